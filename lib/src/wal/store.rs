//! How a walarchive archive directory names and lays out its files (pure, no I/O).
//!
//! Layout:
//! * `DIR/walarchive.info` — `key=value` lines recorded by the first segment push: system
//!   identifier, segment size, page magic (spec §5.1 rule 2, §5.5 rules 2, 5, 6).
//! * `DIR/TTTTTTTTLLLLLLLL/<wal name>-<blake3 hex>[.lz4]` — segments, partials and backup
//!   history files, one directory per timeline and log id (at most 256 entries for 16 MiB
//!   segments), as pgBackRest does.
//! * `DIR/<NNNNNNNN.history>-<blake3 hex>` — timeline history files, never compressed.
//! * `.walarchive-tmp.*` — files being written; never a final name, never listed.
//!
//! The BLAKE3 of the **uncompressed** file is part of the stored name, so a file is checked
//! without walarchive: `lz4 -dc F | b3sum` must print the hash in F's name. One file per WAL
//! name: the name + hash + rename make a push atomic (pgBackRest puts its SHA-1 there too).

use std::fmt;

use super::lz4frame::{self, FrameError};
use super::name::WalName;

/// Name of the metadata file at the archive's root.
pub const INFO_FILE: &str = "walarchive.info";
/// Prefix of temporary files; nothing with it is ever an archived file.
pub const TEMP_PREFIX: &str = ".walarchive-tmp.";
/// Suffix of LZ4-compressed files.
pub const LZ4_SUFFIX: &str = ".lz4";

/// An archived file's name, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredName {
    pub wal: WalName,
    /// BLAKE3 of the original (uncompressed) bytes.
    pub hash: [u8; 32],
    pub compressed: bool,
}

/// BLAKE3 of the original bytes, as recorded in stored names.
pub fn content_hash(data: &[u8]) -> [u8; 32] {
    blake3::hash(data).into()
}

/// Incremental [`content_hash`], for data that arrives block by block.
#[derive(Default)]
pub struct ContentHasher(blake3::Hasher);

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finalize(&self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Lower-case hex of a hash.
pub fn hex(hash: &[u8; 32]) -> String {
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let d = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = (d(pair[0])? << 4) | d(pair[1])?;
    }
    Some(out)
}

impl StoredName {
    /// Decode a directory entry; `None` for anything that is not an archived file
    /// (temporary files, the info file, strangers).
    pub fn parse(file: &str) -> Option<StoredName> {
        let (base, compressed) = match file.strip_suffix(LZ4_SUFFIX) {
            Some(b) => (b, true),
            None => (file, false),
        };
        let (wal, h) = base.rsplit_once('-')?;
        let wal = WalName::parse(wal).ok()?;
        if compressed && !wal.has_pages() {
            return None;
        }
        Some(StoredName {
            wal,
            hash: unhex(h)?,
            compressed,
        })
    }

    /// The file name in the archive.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}{}",
            self.wal,
            hex(&self.hash),
            if self.compressed { LZ4_SUFFIX } else { "" }
        )
    }

    /// Path relative to the archive root.
    pub fn rel_path(&self) -> String {
        match self.wal.archive_subdir() {
            Some(d) => format!("{d}/{}", self.file_name()),
            None => self.file_name(),
        }
    }

    /// True when `file` (a directory entry) is some stored version of the WAL name `wal`.
    pub fn entry_is_for(file: &str, wal: &str) -> bool {
        file.len() > wal.len() && file.starts_with(wal) && file.as_bytes()[wal.len()] == b'-'
    }
}

/// A stored file whose bytes do not give back what its name promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredError {
    Frame(FrameError),
    /// BLAKE3 of the content differs from the one in the name.
    Checksum {
        expected: String,
        found: String,
    },
}

impl fmt::Display for StoredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredError::Frame(e) => e.fmt(f),
            StoredError::Checksum { expected, found } => {
                write!(
                    f,
                    "BLAKE3 mismatch: name says {expected}, content is {found}"
                )
            }
        }
    }
}

impl std::error::Error for StoredError {}

/// The archive file reader: decompress (when `.lz4`, producing at most `limit` bytes) and
/// check the BLAKE3 in the name. Returns the original bytes.
pub fn decode_stored(
    name: &StoredName,
    bytes: &[u8],
    limit: usize,
) -> Result<Vec<u8>, StoredError> {
    let content = if name.compressed {
        lz4frame::decode_frame(bytes, limit).map_err(StoredError::Frame)?
    } else {
        bytes.to_vec()
    };
    let found: [u8; 32] = blake3::hash(&content).into();
    if found != name.hash {
        return Err(StoredError::Checksum {
            expected: hex(&name.hash),
            found: hex(&found),
        });
    }
    Ok(content)
}

/// What the first segment push records about the cluster (`walarchive.info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveInfo {
    pub system_id: u64,
    pub seg_size: u32,
    pub magic: u16,
}

impl ArchiveInfo {
    /// Text form, `key=value` lines.
    pub fn format(&self) -> String {
        format!(
            "# walarchive archive of one PostgreSQL cluster; written by the first push, never changed\n\
             system-identifier={}\nwal-segment-size={}\nwal-page-magic=0x{:04X}\n",
            self.system_id, self.seg_size, self.magic
        )
    }

    /// Parse the text form; the error names the line.
    pub fn parse(data: &[u8]) -> Result<ArchiveInfo, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8 text".to_string())?;
        let (mut sys, mut seg, mut magic) = (None, None, None);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("line {}: cannot parse '{line}'", i + 1);
            let (k, v) = line.split_once('=').ok_or_else(bad)?;
            match k {
                "system-identifier" => sys = Some(v.parse::<u64>().map_err(|_| bad())?),
                "wal-segment-size" => seg = Some(v.parse::<u32>().map_err(|_| bad())?),
                "wal-page-magic" => {
                    let h = v.strip_prefix("0x").ok_or_else(bad)?;
                    magic = Some(u16::from_str_radix(h, 16).map_err(|_| bad())?)
                }
                _ => {}
            }
        }
        match (sys, seg, magic) {
            (Some(system_id), Some(seg_size), Some(magic))
                if super::name::valid_seg_size(seg_size) =>
            {
                Ok(ArchiveInfo {
                    system_id,
                    seg_size,
                    magic,
                })
            }
            _ => Err(
                "system-identifier, wal-segment-size or wal-page-magic missing or invalid".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        let wal = WalName::parse("000000010000000000000009").unwrap();
        let s = StoredName {
            wal,
            hash: blake3::hash(b"x").into(),
            compressed: true,
        };
        let f = s.file_name();
        assert!(
            f.starts_with("000000010000000000000009-") && f.ends_with(".lz4"),
            "{f}"
        );
        assert_eq!(StoredName::parse(&f), Some(s));
        assert_eq!(s.rel_path(), format!("0000000100000000/{f}"));
        assert!(StoredName::entry_is_for(&f, "000000010000000000000009"));
        assert!(!StoredName::entry_is_for(&f, "00000001000000000000000"));
        let h = StoredName {
            wal: WalName::parse("00000002.history").unwrap(),
            hash: [7; 32],
            compressed: false,
        };
        assert_eq!(StoredName::parse(&h.rel_path()), Some(h));
        for bad in [
            ".walarchive-tmp.000000010000000000000009.1.2",
            "walarchive.info",
            "000000010000000000000009",
            "000000010000000000000009-abc",
            "00000002.history-0707070707070707070707070707070707070707070707070707070707070707.lz4",
        ] {
            assert_eq!(StoredName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn decode_checks_the_hash() {
        let data = vec![5u8; 100_000];
        let wal = WalName::parse("000000010000000000000009").unwrap();
        let s = StoredName {
            wal,
            hash: blake3::hash(&data).into(),
            compressed: true,
        };
        let frame = lz4frame::compress_to_vec(&data, 1);
        assert_eq!(decode_stored(&s, &frame, 1 << 20).unwrap(), data);
        let s2 = StoredName { hash: [0; 32], ..s };
        assert!(matches!(
            decode_stored(&s2, &frame, 1 << 20),
            Err(StoredError::Checksum { .. })
        ));
    }

    #[test]
    fn info_round_trip() {
        let i = ArchiveInfo {
            system_id: 7711763586823575507,
            seg_size: 16 << 20,
            magic: 0xD110,
        };
        assert_eq!(ArchiveInfo::parse(i.format().as_bytes()), Ok(i));
        assert!(ArchiveInfo::parse(b"system-identifier=1\n").is_err());
        assert!(ArchiveInfo::parse(b"system-identifier=x\n").is_err());
    }
}
