//! WAL file names as PostgreSQL hands them to `archive_command` / `restore_command`.
//!
//! Grammar (spec `pg-wal-archive.md` §4): a segment is `TLI LOG SEG` (3 × 8 upper-case hex),
//! a partial segment is a segment name + `.partial`, a timeline history file is
//! `TLI.history`, a backup history file is a segment name + `.` + 8 hex + `.backup`.
//! Anything else — a `/`, `..`, a leading dot, lower-case hex, a timeline 0 — is refused:
//! `%f` is treated as hostile input (§1.1). Parsing never panics and never allocates.

use std::fmt;

/// What kind of file a WAL archive name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WalKind {
    /// A complete segment, `000000010000000000000009`.
    Segment,
    /// The old timeline's unfinished last segment, `000000010000000000000015.partial`.
    Partial,
    /// A backup history file, `000000010000000000000006.00000028.backup`.
    Backup { offset: u32 },
    /// A timeline history file, `00000002.history`.
    History,
}

/// A parsed, valid WAL archive file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalName {
    pub kind: WalKind,
    /// Timeline ID (≥ 1).
    pub tli: u32,
    /// Log id (high 32 bits of the segment's start LSN); 0 for history files.
    pub log: u32,
    /// Segment within the log id; 0 for history files.
    pub seg: u32,
}

/// Why a name is not a WAL archive name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(usize),
    /// A byte that can never appear in a WAL name (`/`, `.` in the wrong place, ...), at offset.
    BadChar {
        offset: usize,
        byte: u8,
    },
    /// None of the four grammars.
    Unknown,
    /// Timeline 0 does not exist.
    ZeroTimeline,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "empty file name"),
            NameError::TooLong(n) => write!(f, "file name of {n} bytes is too long for a WAL file"),
            NameError::BadChar { offset, byte } => {
                write!(
                    f,
                    "byte 0x{byte:02x} at offset {offset} cannot appear in a WAL file name"
                )
            }
            NameError::Unknown => write!(
                f,
                "not a WAL segment, .partial, .history or .backup file name"
            ),
            NameError::ZeroTimeline => write!(f, "timeline 0 does not exist"),
        }
    }
}

impl std::error::Error for NameError {}

/// Parse 8 upper-case hex digits.
fn hex8(b: &[u8]) -> Option<u32> {
    if b.len() != 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u32::from(d);
    }
    Some(v)
}

impl WalName {
    /// Parse a file name (no directory part).
    pub fn parse(name: &str) -> Result<WalName, NameError> {
        let b = name.as_bytes();
        if b.is_empty() {
            return Err(NameError::Empty);
        }
        // PostgreSQL's archiver accepts at most 40 characters (pgarch.h MIN/MAX_XFN_CHARS).
        if b.len() > 40 {
            return Err(NameError::TooLong(b.len()));
        }
        for (i, &c) in b.iter().enumerate() {
            let ok = c.is_ascii_digit()
                || (b'A'..=b'F').contains(&c)
                || c == b'.'
                || c.is_ascii_lowercase();
            if !ok || (i == 0 && c == b'.') {
                return Err(NameError::BadChar { offset: i, byte: c });
            }
        }
        let seg3 = |b: &[u8]| -> Option<(u32, u32, u32)> {
            if b.len() != 24 {
                return None;
            }
            Some((hex8(&b[0..8])?, hex8(&b[8..16])?, hex8(&b[16..24])?))
        };
        let (kind, tli, log, seg) = if b.len() == 24 {
            let (t, l, s) = seg3(b).ok_or(NameError::Unknown)?;
            (WalKind::Segment, t, l, s)
        } else if b.len() == 32 && &b[24..] == b".partial" {
            let (t, l, s) = seg3(&b[..24]).ok_or(NameError::Unknown)?;
            (WalKind::Partial, t, l, s)
        } else if b.len() == 16 && &b[8..] == b".history" {
            let t = hex8(&b[..8]).ok_or(NameError::Unknown)?;
            (WalKind::History, t, 0, 0)
        } else if b.len() == 40 && b[24] == b'.' && &b[33..] == b".backup" {
            let (t, l, s) = seg3(&b[..24]).ok_or(NameError::Unknown)?;
            let offset = hex8(&b[25..33]).ok_or(NameError::Unknown)?;
            (WalKind::Backup { offset }, t, l, s)
        } else {
            return Err(NameError::Unknown);
        };
        if tli == 0 {
            return Err(NameError::ZeroTimeline);
        }
        Ok(WalName {
            kind,
            tli,
            log,
            seg,
        })
    }

    /// True for segments and partial segments (files that carry WAL page headers).
    pub fn has_pages(&self) -> bool {
        matches!(self.kind, WalKind::Segment | WalKind::Partial)
    }

    /// Segment number for a segment size, or `None` when `seg` is out of range for that size
    /// (`000000010000000000000100` is not a 16 MiB segment name, spec §4).
    pub fn segno(&self, seg_size: u32) -> Option<u64> {
        let per_log = segs_per_log(seg_size)?;
        if u64::from(self.seg) >= per_log {
            return None;
        }
        Some(u64::from(self.log) * per_log + u64::from(self.seg))
    }

    /// Start LSN of the segment (= expected `xlp_pageaddr` of page 0).
    pub fn start_lsn(&self, seg_size: u32) -> Option<u64> {
        self.segno(seg_size).map(|n| n * u64::from(seg_size))
    }

    /// The 24-character segment part (`TLI LOG SEG`); for history files `TLI` + 16 zeros.
    pub fn segment_part(&self) -> String {
        format!("{:08X}{:08X}{:08X}", self.tli, self.log, self.seg)
    }

    /// Directory an archive keeps this file in: `TLI LOG` (16 hex) for segment-like files,
    /// `None` (the archive root) for history files.
    pub fn archive_subdir(&self) -> Option<String> {
        match self.kind {
            WalKind::History => None,
            _ => Some(format!("{:08X}{:08X}", self.tli, self.log)),
        }
    }

    /// The segment name that follows this one (same timeline), for gap detection.
    pub fn segment_from_segno(tli: u32, segno: u64, seg_size: u32) -> Option<WalName> {
        let per_log = segs_per_log(seg_size)?;
        let log = u32::try_from(segno / per_log).ok()?;
        Some(WalName {
            kind: WalKind::Segment,
            tli,
            log,
            seg: (segno % per_log) as u32,
        })
    }
}

/// Segments per log id (`0x1_0000_0000 / seg_size`), for a valid segment size.
pub fn segs_per_log(seg_size: u32) -> Option<u64> {
    if !valid_seg_size(seg_size) {
        return None;
    }
    Some(0x1_0000_0000u64 / u64::from(seg_size))
}

/// A WAL segment size: a power of two from 1 MiB to 1 GiB (spec §5.1).
pub fn valid_seg_size(s: u32) -> bool {
    s.is_power_of_two() && (1 << 20..=1 << 30).contains(&s)
}

impl fmt::Display for WalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WalKind::Segment => write!(f, "{:08X}{:08X}{:08X}", self.tli, self.log, self.seg),
            WalKind::Partial => write!(
                f,
                "{:08X}{:08X}{:08X}.partial",
                self.tli, self.log, self.seg
            ),
            WalKind::History => write!(f, "{:08X}.history", self.tli),
            WalKind::Backup { offset } => {
                write!(
                    f,
                    "{:08X}{:08X}{:08X}.{:08X}.backup",
                    self.tli, self.log, self.seg, offset
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_grammars_round_trip() {
        for n in [
            "000000010000000A000000FF",
            "000000010000000000000015.partial",
            "00000002.history",
            "000000010000000000000006.00000028.backup",
        ] {
            let w = WalName::parse(n).unwrap();
            assert_eq!(w.to_string(), n);
        }
        let w = WalName::parse("000000010000000A000000FF").unwrap();
        assert_eq!((w.tli, w.log, w.seg), (1, 0xA, 0xFF));
        assert_eq!(
            WalName::parse("000000010000000000000006.00000028.backup")
                .unwrap()
                .kind,
            WalKind::Backup { offset: 0x28 }
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for n in [
            "",
            "../../etc/passwd",
            "00000001/000000000000000A",
            ".history",
            "..",
            "000000010000000a000000ff",
            "00000000000000000000000A",
            "0000000100000000000000",
            "000000010000000000000009.gz",
            "00000002.historyx",
            "000000010000000000000006.0000002G.backup",
            "RECOVERYXLOG",
            "000000010000000000000009\n",
            "0000000100000000000000090000000100000000000000090",
        ] {
            assert!(WalName::parse(n).is_err(), "{n:?}");
        }
        assert_eq!(
            WalName::parse("../x").unwrap_err(),
            NameError::BadChar {
                offset: 0,
                byte: b'.'
            }
        );
        assert_eq!(
            WalName::parse("a/b").unwrap_err(),
            NameError::BadChar {
                offset: 1,
                byte: b'/'
            }
        );
    }

    #[test]
    fn segno_and_lsn() {
        let w = WalName::parse("000000010000000000000009").unwrap();
        assert_eq!(w.start_lsn(16 << 20), Some(0x0900_0000));
        let w = WalName::parse("00000001000000000000001C").unwrap();
        assert_eq!(w.start_lsn(1 << 20), Some(0x01C0_0000));
        assert_eq!(
            WalName::parse("000000010000000000000100")
                .unwrap()
                .segno(16 << 20),
            None
        );
        assert_eq!(
            WalName::parse("000000010000000000000100")
                .unwrap()
                .segno(1 << 20),
            Some(0x100)
        );
        let w = WalName::parse("000000010000000100000003").unwrap();
        assert_eq!(w.segno(16 << 20), Some(0x103));
        let n = WalName::segment_from_segno(1, 0x100, 16 << 20).unwrap();
        assert_eq!(n.to_string(), "000000010000000100000000");
        assert!(!valid_seg_size(3 << 20));
        assert!(valid_seg_size(1 << 30));
    }
}
