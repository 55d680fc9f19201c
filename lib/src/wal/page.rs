//! The long page header at the start of every WAL segment, and the checks `push` and `fetch`
//! run on it.
//!
//! Layout (spec `pg-wal-archive.md` §5.3, `XLogLongPageHeaderData`, little endian): magic u16
//! @0, info u16 @2, tli u32 @4, pageaddr u64 @8, rem_len u32 @16, padding @20, sysid u64 @24,
//! seg_size u32 @32, xlog_blcksz u32 @36. Only page 0 is checked (§5.5): after an XLOG SWITCH
//! record the rest of a segment is padding. Pure functions over bytes; never panics.

use std::fmt;

use super::name::{valid_seg_size, WalName};

/// Size of the long header.
pub const LONG_HEADER_LEN: usize = 40;
/// `XLP_LONG_HEADER` in `xlp_info`.
pub const XLP_LONG_HEADER: u16 = 0x0002;
/// Every `xlp_info` bit any supported major version defines (§5.3).
pub const XLP_ALL_FLAGS: u16 = 0x000F;

/// `XLOG_PAGE_MAGIC` per PostgreSQL major version (§5.4, pgBackRest's vendored headers).
pub const KNOWN_MAGIC: [(u16, &str); 10] = [
    (0xD093, "9.6"),
    (0xD097, "10"),
    (0xD098, "11"),
    (0xD101, "12"),
    (0xD106, "13"),
    (0xD10D, "14"),
    (0xD110, "15"),
    (0xD113, "16"),
    (0xD116, "17"),
    (0xD118, "18"),
];

/// The PostgreSQL major version that writes `magic`, if known.
pub fn pg_version_of(magic: u16) -> Option<&'static str> {
    KNOWN_MAGIC
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, v)| *v)
}

/// The decoded long page header of page 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeader {
    pub magic: u16,
    pub info: u16,
    pub tli: u32,
    pub pageaddr: u64,
    pub rem_len: u32,
    pub sysid: u64,
    pub seg_size: u32,
    pub xlog_blcksz: u32,
}

/// A header that cannot belong to the named segment. Each variant names the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// Fewer than 40 bytes.
    Short {
        len: usize,
    },
    UnknownMagic {
        magic: u16,
    },
    NoLongHeader {
        info: u16,
    },
    UnknownFlags {
        info: u16,
    },
    BadSegSize {
        seg_size: u32,
    },
    BadBlockSize {
        blcksz: u32,
    },
    /// The file's length is not the segment size the header states.
    WrongFileSize {
        len: u64,
        seg_size: u32,
    },
    /// The name's segment number does not exist for this segment size.
    NameOutOfRange {
        seg_size: u32,
    },
    PageAddr {
        found: u64,
        expected: u64,
    },
    /// `xlp_tli` is newer than the timeline in the name.
    Timeline {
        header: u32,
        name: u32,
    },
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::Short { len } => write!(f, "{len} bytes is too short for a WAL page header (40 at offset 0)"),
            PageError::UnknownMagic { magic } => write!(
                f,
                "unknown WAL page magic 0x{magic:04X} at offset 0 (not a PostgreSQL 9.6-18 WAL segment)"
            ),
            PageError::NoLongHeader { info } => {
                write!(f, "page 0 has no long header (xlp_info 0x{info:04X} at offset 2)")
            }
            PageError::UnknownFlags { info } => write!(f, "unknown xlp_info bits 0x{info:04X} at offset 2"),
            PageError::BadSegSize { seg_size } => write!(f, "invalid xlp_seg_size {seg_size} at offset 32"),
            PageError::BadBlockSize { blcksz } => write!(f, "invalid xlp_xlog_blcksz {blcksz} at offset 36"),
            PageError::WrongFileSize { len, seg_size } => {
                write!(f, "file is {len} bytes, but its header says segments are {seg_size} bytes")
            }
            PageError::NameOutOfRange { seg_size } => {
                write!(f, "name is not a valid segment for {seg_size}-byte segments")
            }
            PageError::PageAddr { found, expected } => write!(
                f,
                "page address {:X}/{:X} at offset 8 does not match the name (expected {:X}/{:X})",
                found >> 32,
                found & 0xffff_ffff,
                expected >> 32,
                expected & 0xffff_ffff
            ),
            PageError::Timeline { header, name } => {
                write!(f, "page timeline {header} at offset 4 is newer than the name's timeline {name}")
            }
        }
    }
}

impl std::error::Error for PageError {}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

impl LongHeader {
    /// Decode the first 40 bytes, without judging them.
    pub fn decode(b: &[u8]) -> Result<LongHeader, PageError> {
        if b.len() < LONG_HEADER_LEN {
            return Err(PageError::Short { len: b.len() });
        }
        Ok(LongHeader {
            magic: u16_at(b, 0),
            info: u16_at(b, 2),
            tli: u32_at(b, 4),
            pageaddr: u64_at(b, 8),
            rem_len: u32_at(b, 16),
            sysid: u64_at(b, 24),
            seg_size: u32_at(b, 32),
            xlog_blcksz: u32_at(b, 36),
        })
    }

    /// Decode and check a header on its own (§5.5 rules 2, 3, 5): known magic (or the one
    /// given in `accept_magic`), long header flag, no unknown flag, sane sizes.
    pub fn parse(b: &[u8], accept_magic: Option<u16>) -> Result<LongHeader, PageError> {
        let h = LongHeader::decode(b)?;
        if pg_version_of(h.magic).is_none() && accept_magic != Some(h.magic) {
            return Err(PageError::UnknownMagic { magic: h.magic });
        }
        if h.info & XLP_LONG_HEADER == 0 {
            return Err(PageError::NoLongHeader { info: h.info });
        }
        if h.info & !XLP_ALL_FLAGS != 0 {
            return Err(PageError::UnknownFlags { info: h.info });
        }
        if !valid_seg_size(h.seg_size) {
            return Err(PageError::BadSegSize {
                seg_size: h.seg_size,
            });
        }
        if !h.xlog_blcksz.is_power_of_two() || !(1024..=65536).contains(&h.xlog_blcksz) {
            return Err(PageError::BadBlockSize {
                blcksz: h.xlog_blcksz,
            });
        }
        Ok(h)
    }

    /// Check that this header belongs to the segment `name` in a file of `file_len` bytes
    /// (§5.5 rules 1, 4, 7).
    pub fn check_against(&self, name: &WalName, file_len: u64) -> Result<(), PageError> {
        if file_len != u64::from(self.seg_size) {
            return Err(PageError::WrongFileSize {
                len: file_len,
                seg_size: self.seg_size,
            });
        }
        let expected = name
            .start_lsn(self.seg_size)
            .ok_or(PageError::NameOutOfRange {
                seg_size: self.seg_size,
            })?;
        if self.pageaddr != expected {
            return Err(PageError::PageAddr {
                found: self.pageaddr,
                expected,
            });
        }
        // The first segment of a new timeline starts with the parent's bytes, so its page 0
        // may carry the parent TLI (fixture 00000002000000000000000A): only "not newer".
        if self.tli > name.tli || self.tli == 0 {
            return Err(PageError::Timeline {
                header: self.tli,
                name: name.tli,
            });
        }
        Ok(())
    }
}

/// Parse and check the whole segment `data` named `name` (both rule sets).
pub fn check_segment(
    name: &WalName,
    data: &[u8],
    accept_magic: Option<u16>,
) -> Result<LongHeader, PageError> {
    let h = LongHeader::parse(data, accept_magic)?;
    h.check_against(name, data.len() as u64)?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First 40 bytes of fixture pg15-16mib/000000010000000000000009 (spec §5.3).
    pub const SEG9: [u8; 40] = [
        0x10, 0xd1, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
        0x00, 0xd7, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd3, 0x57, 0x69, 0xa0, 0x1f, 0xb0,
        0x05, 0x6b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00,
    ];

    #[test]
    fn decodes_the_fixture_header() {
        let h = LongHeader::parse(&SEG9, None).unwrap();
        assert_eq!(h.magic, 0xD110);
        assert_eq!(h.info, 0x0007);
        assert_eq!(h.tli, 1);
        assert_eq!(h.pageaddr, 0x0900_0000);
        assert_eq!(h.rem_len, 3799);
        assert_eq!(h.sysid, 7711763586823575507);
        assert_eq!(h.seg_size, 16 << 20);
        assert_eq!(h.xlog_blcksz, 8192);
        let name = WalName::parse("000000010000000000000009").unwrap();
        h.check_against(&name, 16 << 20).unwrap();
        let tl2 = WalName::parse("000000020000000000000009").unwrap();
        h.check_against(&tl2, 16 << 20).unwrap();
    }

    #[test]
    fn each_rule_names_the_value() {
        let name = WalName::parse("000000010000000000000009").unwrap();
        let h = LongHeader::parse(&SEG9, None).unwrap();
        assert_eq!(
            LongHeader::parse(&SEG9[..39], None),
            Err(PageError::Short { len: 39 })
        );
        let mut b = SEG9;
        b[0] = 0;
        assert_eq!(
            LongHeader::parse(&b, None),
            Err(PageError::UnknownMagic { magic: 0xD100 })
        );
        assert!(LongHeader::parse(&b, Some(0xD100)).is_ok());
        let mut b = SEG9;
        b[2] = 0x05;
        assert_eq!(
            LongHeader::parse(&b, None),
            Err(PageError::NoLongHeader { info: 5 })
        );
        let mut b = SEG9;
        b[2] = 0x12;
        assert_eq!(
            LongHeader::parse(&b, None),
            Err(PageError::UnknownFlags { info: 0x12 })
        );
        let mut b = SEG9;
        b[34] = 3;
        assert!(matches!(
            LongHeader::parse(&b, None),
            Err(PageError::BadSegSize { .. })
        ));
        assert_eq!(
            h.check_against(&name, 100),
            Err(PageError::WrongFileSize {
                len: 100,
                seg_size: 16 << 20
            })
        );
        let other = WalName::parse("00000001000000000000000A").unwrap();
        assert_eq!(
            h.check_against(&other, 16 << 20),
            Err(PageError::PageAddr {
                found: 0x0900_0000,
                expected: 0x0A00_0000
            })
        );
        assert_eq!(
            h.check_against(&other, 16 << 20).unwrap_err().to_string(),
            "page address 0/9000000 at offset 8 does not match the name (expected 0/A000000)"
        );
        let mut b = SEG9;
        b[4] = 3;
        let h3 = LongHeader::parse(&b, None).unwrap();
        let tl2 = WalName::parse("000000020000000000000009").unwrap();
        assert_eq!(
            h3.check_against(&tl2, 16 << 20),
            Err(PageError::Timeline { header: 3, name: 2 })
        );
    }
}
