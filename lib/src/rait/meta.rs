//! raitstripe's metadata: one text line in each volume's first block, and an optional
//! trailer record. Pure functions over bytes (fuzzed by `fuzz/fuzz_targets/rait_volume.rs`).
//!
//! The line (one line, printable ASCII, fields in this order, single spaces):
//!
//! ```text
//! RAITSTRIPE v=1 set=<16 hex> child=<i> volumes=<n> parity=<m> block=<c> header=amanda|none
//!     header-size=<h> sums=none|crc32c len=<bytes>|trailer|incomplete crc=<8 hex>\n
//! ```
//!
//! `crc` is the CRC-32C of everything before ` crc=`. `len` is the exact payload length (the
//! striped bytes, without the Amanda header); `trailer` says it is in the volume's last record;
//! `incomplete` is what a seekable volume says until split finishes and rewrites it.
//!
//! Where it goes (spec `amanda-media.md` §1.6: Amanda's parser reads the text up to the first
//! NUL and ignores lines it does not know): with `header=amanda` the line is written into the
//! header's NUL padding, right after the text's final `\n`, so Amanda parses the same fields;
//! the original block is that block with the line turned back into NULs. With `header=none` the
//! first block is the line followed by NULs and is not part of the stream.
//!
//! The trailer is one whole record: `RAITSTRIPE-END v=1 set=<16 hex> child=<i> records=<k>
//! len=<bytes> crc=<8 hex>\n`, then NULs.

use std::fmt;

use super::{looks_like_header, Geometry};

const MAGIC: &str = "RAITSTRIPE";
const END_MAGIC: &str = "RAITSTRIPE-END";
/// Room the line needs in an Amanda header's padding (longest line is ~190 bytes).
pub const LINE_ROOM: usize = 256;

/// What the first block of the stream was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// An Amanda header, copied onto every volume.
    Amanda,
    /// No header: the first block is raitstripe's own.
    None,
}

/// Where the payload length is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Known(u64),
    Trailer,
    Incomplete,
}

/// The metadata line of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub set: u64,
    pub child: usize,
    pub geometry: Geometry,
    pub header: HeaderKind,
    pub len: Length,
}

/// Why a metadata line, trailer or first block was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    /// Field number `index` (0 = magic) is missing or is not `key=...`.
    Field { index: usize, want: &'static str },
    /// `key` has a value that does not parse or is out of range.
    Value { key: &'static str, value: String },
    /// The line's own CRC does not match.
    Crc { stored: u32, computed: u32 },
    /// Bytes after the line that should be NUL are not (at this offset).
    Padding { offset: usize },
    /// The first block is neither raitstripe's nor an Amanda header.
    NotAVolume,
    /// The line says the first block is `stated` bytes but `read` were read.
    HeaderSize { stated: usize, read: usize },
    /// The line says `header=amanda` but what remains is not an Amanda header, or the
    /// reverse.
    HeaderKind,
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::Field { index, want } => write!(f, "metadata field {index}: expected {want}"),
            MetaError::Value { key, value } => write!(f, "metadata: bad {key} value '{value}'"),
            MetaError::Crc { stored, computed } => {
                write!(f, "metadata checksum mismatch: stored {stored:08x}, computed {computed:08x}")
            }
            MetaError::Padding { offset } => write!(f, "metadata: unexpected byte at offset {offset}"),
            MetaError::HeaderSize { stated, read } => write!(
                f,
                "first block is {stated} bytes (split --header-size {stated}), not {read}: use --header-size {stated}"
            ),
            MetaError::NotAVolume => write!(f, "neither a raitstripe volume nor an Amanda RAIT child (no header)"),
            MetaError::HeaderKind => write!(f, "metadata does not match the header block"),
        }
    }
}

impl std::error::Error for MetaError {}

impl Meta {
    /// The line, `\n` included.
    pub fn render(&self) -> String {
        let g = &self.geometry;
        let body = format!(
            "{MAGIC} v=1 set={:016x} child={} volumes={} parity={} block={} header={} header-size={} sums={} len={}",
            self.set,
            self.child,
            g.volumes,
            g.parity,
            g.block,
            match self.header {
                HeaderKind::Amanda => "amanda",
                HeaderKind::None => "none",
            },
            g.header_size,
            if g.sums { "crc32c" } else { "none" },
            match self.len {
                Length::Known(n) => n.to_string(),
                Length::Trailer => "trailer".into(),
                Length::Incomplete => "incomplete".into(),
            },
        );
        let crc = crc32c::crc32c(body.as_bytes());
        format!("{body} crc={crc:08x}\n")
    }

    /// Parse one line (with or without its final `\n`).
    pub fn parse(line: &[u8]) -> Result<Meta, MetaError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut f = Fields::new(line, MAGIC)?;
        f.version()?;
        let set = f.hex64("set")?;
        let child = f.num("child", 254)? as usize;
        let volumes = f.num("volumes", super::MAX_VOLUMES as u64)? as usize;
        let parity = f.num("parity", 254)? as usize;
        let block = f.num("block", super::MAX_BLOCK as u64)? as usize;
        let header = match f.word("header")? {
            "amanda" => HeaderKind::Amanda,
            "none" => HeaderKind::None,
            v => {
                return Err(MetaError::Value {
                    key: "header",
                    value: v.into(),
                })
            }
        };
        let header_size = f.num("header-size", super::MAX_BLOCK as u64)? as usize;
        let sums = match f.word("sums")? {
            "crc32c" => true,
            "none" => false,
            v => {
                return Err(MetaError::Value {
                    key: "sums",
                    value: v.into(),
                })
            }
        };
        let len = match f.word("len")? {
            "trailer" => Length::Trailer,
            "incomplete" => Length::Incomplete,
            v => Length::Known(parse_dec(v, u64::MAX).ok_or_else(|| MetaError::Value {
                key: "len",
                value: v.into(),
            })?),
        };
        f.crc()?;
        let geometry = Geometry::new(volumes, parity, block, header_size, sums).map_err(|e| {
            MetaError::Value {
                key: "geometry",
                value: e.to_string(),
            }
        })?;
        if child >= volumes {
            return Err(MetaError::Value {
                key: "child",
                value: child.to_string(),
            });
        }
        Ok(Meta {
            set,
            child,
            geometry,
            header,
            len,
        })
    }
}

/// The trailer record of a volume whose first block could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    pub set: u64,
    pub child: usize,
    /// Data records before the trailer.
    pub records: u64,
    /// Exact payload length.
    pub len: u64,
}

impl Trailer {
    /// The whole record: the line, then NULs up to `record_len` bytes.
    pub fn render(&self, record_len: usize) -> Vec<u8> {
        let body = format!(
            "{END_MAGIC} v=1 set={:016x} child={} records={} len={}",
            self.set, self.child, self.records, self.len
        );
        let crc = crc32c::crc32c(body.as_bytes());
        let mut rec = format!("{body} crc={crc:08x}\n").into_bytes();
        assert!(rec.len() <= record_len, "record too small for the trailer");
        rec.resize(record_len, 0);
        rec
    }

    /// Parse a whole trailer record (the line, then only NULs).
    pub fn parse(record: &[u8]) -> Result<Trailer, MetaError> {
        let end = record
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(MetaError::Field {
                index: 0,
                want: END_MAGIC,
            })?;
        if let Some(p) = record[end + 1..].iter().position(|&b| b != 0) {
            return Err(MetaError::Padding {
                offset: end + 1 + p,
            });
        }
        let mut f = Fields::new(&record[..end], END_MAGIC)?;
        f.version()?;
        let set = f.hex64("set")?;
        let child = f.num("child", 254)? as usize;
        let records = f.num("records", u64::MAX)?;
        let len = f.num("len", u64::MAX)?;
        f.crc()?;
        Ok(Trailer {
            set,
            child,
            records,
            len,
        })
    }
}

/// What the first block of a volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstBlock {
    /// raitstripe's line, when present.
    pub meta: Option<Meta>,
    /// The stream's own header block as it was before split added the line, when the stream
    /// had one (always the case for Amanda's own RAIT children).
    pub amanda: Option<Vec<u8>>,
}

impl FirstBlock {
    /// Read a volume's first block (its full `header_size` bytes).
    pub fn parse(block: &[u8]) -> Result<FirstBlock, MetaError> {
        let text_end = block.iter().position(|&b| b == 0).unwrap_or(block.len());
        let text = &block[..text_end];
        let line_start = match text.strip_suffix(b"\n") {
            Some(t) => t.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1),
            None => text.len(),
        };
        let last = &text[line_start..];
        if !last.starts_with(b"RAITSTRIPE ") {
            return if looks_like_header(block) {
                Ok(FirstBlock {
                    meta: None,
                    amanda: Some(block.to_vec()),
                })
            } else {
                Err(MetaError::NotAVolume)
            };
        }
        if let Some(p) = block[text_end..].iter().position(|&b| b != 0) {
            return Err(MetaError::Padding {
                offset: text_end + p,
            });
        }
        let meta = Meta::parse(last)?;
        if meta.geometry.header_size != block.len() {
            return Err(MetaError::HeaderSize {
                stated: meta.geometry.header_size,
                read: block.len(),
            });
        }
        let amanda = match meta.header {
            HeaderKind::None if line_start == 0 => None,
            HeaderKind::Amanda if line_start > 0 => {
                let mut orig = block.to_vec();
                orig[line_start..text_end].fill(0);
                if !looks_like_header(&orig) {
                    return Err(MetaError::HeaderKind);
                }
                Some(orig)
            }
            _ => return Err(MetaError::HeaderKind),
        };
        Ok(FirstBlock {
            meta: Some(meta),
            amanda,
        })
    }

    /// The size of the first block as its metadata line states it, when `bytes` (the start
    /// of a volume, possibly more or less than the first block) hold a valid line.
    pub fn stated_header_size(bytes: &[u8]) -> Option<usize> {
        let text_end = bytes.iter().position(|&b| b == 0)?;
        let text = bytes[..text_end].strip_suffix(b"\n")?;
        let start = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        Meta::parse(&text[start..])
            .ok()
            .map(|m| m.geometry.header_size)
    }

    /// The first block split writes: `amanda` (the stream's header block, which must pass
    /// [`can_carry_line`]) with the line in its padding, or the line alone padded with NULs to
    /// `header_size`.
    pub fn build(amanda: Option<&[u8]>, meta: &Meta) -> Vec<u8> {
        let line = meta.render();
        let size = meta.geometry.header_size;
        let mut block = match amanda {
            Some(h) => h.to_vec(),
            None => vec![0u8; size],
        };
        let at = block.iter().position(|&b| b == 0).unwrap_or(block.len());
        let at = if amanda.is_some() { at } else { 0 };
        assert!(
            at + line.len() < block.len(),
            "no room for the metadata line"
        );
        block[at..at + line.len()].copy_from_slice(line.as_bytes());
        block
    }
}

/// Can this header block take the line without changing what Amanda parses, and can the
/// original be restored exactly? It must be an Amanda header whose text ends with `\n`,
/// followed only by NULs, with [`LINE_ROOM`] bytes to spare.
pub fn can_carry_line(block: &[u8]) -> bool {
    let Some(end) = block.iter().position(|&b| b == 0) else {
        return false;
    };
    looks_like_header(block)
        && end > 0
        && block[end - 1] == b'\n'
        && end + LINE_ROOM <= block.len()
        && block[end..].iter().all(|&b| b == 0)
        // the stream's own last line must not look like ours
        && !block[..end - 1].rsplit(|&b| b == b'\n').next().unwrap_or(&[]).starts_with(b"RAITSTRIPE ")
}

fn parse_dec(v: &str, max: u64) -> Option<u64> {
    if v.is_empty()
        || v.len() > 20
        || !v.bytes().all(|b| b.is_ascii_digit())
        || (v.len() > 1 && v.starts_with('0'))
    {
        return None;
    }
    v.parse::<u64>().ok().filter(|&n| n <= max)
}

/// A cursor over `key=value` fields separated by single spaces.
struct Fields<'a> {
    text: &'a str,
    parts: std::str::Split<'a, char>,
    index: usize,
    /// byte length of the text before ` crc=`
    body_len: usize,
}

impl<'a> Fields<'a> {
    fn new(line: &'a [u8], magic: &'static str) -> Result<Fields<'a>, MetaError> {
        let text = std::str::from_utf8(line).map_err(|_| MetaError::Field {
            index: 0,
            want: magic,
        })?;
        let mut parts = text.split(' ');
        if parts.next() != Some(magic) {
            return Err(MetaError::Field {
                index: 0,
                want: magic,
            });
        }
        let body_len = text.rfind(" crc=").unwrap_or(0);
        Ok(Fields {
            text,
            parts,
            index: 0,
            body_len,
        })
    }

    fn word(&mut self, key: &'static str) -> Result<&'a str, MetaError> {
        self.index += 1;
        let part = self.parts.next().ok_or(MetaError::Field {
            index: self.index,
            want: key,
        })?;
        match part.split_once('=') {
            Some((k, v)) if k == key => Ok(v),
            _ => Err(MetaError::Field {
                index: self.index,
                want: key,
            }),
        }
    }

    fn num(&mut self, key: &'static str, max: u64) -> Result<u64, MetaError> {
        let v = self.word(key)?;
        parse_dec(v, max).ok_or_else(|| MetaError::Value {
            key,
            value: v.into(),
        })
    }

    fn hex64(&mut self, key: &'static str) -> Result<u64, MetaError> {
        let v = self.word(key)?;
        if v.len() != 16
            || !v
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(MetaError::Value {
                key,
                value: v.into(),
            });
        }
        u64::from_str_radix(v, 16).map_err(|_| MetaError::Value {
            key,
            value: v.into(),
        })
    }

    fn version(&mut self) -> Result<(), MetaError> {
        match self.word("v")? {
            "1" => Ok(()),
            v => Err(MetaError::Value {
                key: "v",
                value: v.into(),
            }),
        }
    }

    fn crc(&mut self) -> Result<(), MetaError> {
        let v = self.word("crc")?;
        if v.len() != 8
            || !v
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(MetaError::Value {
                key: "crc",
                value: v.into(),
            });
        }
        let stored = u32::from_str_radix(v, 16).map_err(|_| MetaError::Value {
            key: "crc",
            value: v.into(),
        })?;
        if self.parts.next().is_some() {
            return Err(MetaError::Field {
                index: self.index + 1,
                want: "end of line",
            });
        }
        let computed = crc32c::crc32c(&self.text.as_bytes()[..self.body_len]);
        if stored != computed {
            return Err(MetaError::Crc { stored, computed });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(header: HeaderKind, len: Length) -> Meta {
        Meta {
            set: 0x0123_4567_89ab_cdef,
            child: 2,
            geometry: Geometry::new(3, 1, 32768, 32768, false).unwrap(),
            header,
            len,
        }
    }

    #[test]
    fn line_round_trips() {
        for len in [
            Length::Known(0),
            Length::Known(u64::MAX),
            Length::Trailer,
            Length::Incomplete,
        ] {
            let m = meta(HeaderKind::None, len);
            let line = m.render();
            assert!(line.len() < LINE_ROOM, "{line}");
            assert_eq!(Meta::parse(line.as_bytes()).unwrap(), m);
        }
        let line = meta(HeaderKind::Amanda, Length::Known(5)).render();
        let bad = line.replace("len=5", "len=6");
        assert!(matches!(
            Meta::parse(bad.as_bytes()),
            Err(MetaError::Crc { .. })
        ));
        let bad = line.replace("child=2", "child=02");
        assert!(matches!(
            Meta::parse(bad.as_bytes()),
            Err(MetaError::Value { key: "child", .. })
        ));
    }

    #[test]
    fn amanda_header_is_restored_exactly() {
        let mut hdr = b"AMANDA: SPLIT_FILE 20260101120000 h /d  part 1/-1  lev 0 comp N program /bin/tar\nTo restore, position tape at start of file and run:\n\tdd if=<tape> bs=32k skip=1 | /bin/tar -xpGf - ... \n\x0c\n".to_vec();
        hdr.resize(32768, 0);
        assert!(can_carry_line(&hdr));
        let m = meta(HeaderKind::Amanda, Length::Known(12345));
        let block = FirstBlock::build(Some(&hdr), &m);
        assert_eq!(block.len(), 32768);
        let fb = FirstBlock::parse(&block).unwrap();
        assert_eq!(fb.meta, Some(m));
        assert_eq!(fb.amanda.as_deref(), Some(&hdr[..]));
        // Amanda's own child: no line
        let fb = FirstBlock::parse(&hdr).unwrap();
        assert_eq!(
            fb,
            FirstBlock {
                meta: None,
                amanda: Some(hdr.clone())
            }
        );
        // no room / junk after the text
        let mut junk = hdr.clone();
        junk[40000 % 32768] = 1;
        assert!(!can_carry_line(&junk));
        assert_eq!(
            FirstBlock::parse(&vec![0u8; 32768]),
            Err(MetaError::NotAVolume)
        );
    }

    #[test]
    fn own_block_round_trips() {
        let m = meta(HeaderKind::None, Length::Trailer);
        let block = FirstBlock::build(None, &m);
        let fb = FirstBlock::parse(&block).unwrap();
        assert_eq!(
            fb,
            FirstBlock {
                meta: Some(m),
                amanda: None
            }
        );
    }

    #[test]
    fn trailer_round_trips() {
        let t = Trailer {
            set: 7,
            child: 1,
            records: 3,
            len: 99,
        };
        let rec = t.render(512);
        assert_eq!(rec.len(), 512);
        assert_eq!(Trailer::parse(&rec).unwrap(), t);
        let mut bad = rec.clone();
        bad[511] = 1;
        assert_eq!(
            Trailer::parse(&bad),
            Err(MetaError::Padding { offset: 511 })
        );
        assert!(Trailer::parse(&vec![0u8; 512]).is_err());
    }
}
