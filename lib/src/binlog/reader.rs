//! Framing a v4 binlog: magic, the 19-byte common header, the Format_description_event and
//! CRC32 trailers, as pure functions over the file's bytes.
//!
//! Spec: `shared/specs/mysql-binlog.md` §1–§4. Invariants:
//! * every event is a sub-slice of the input: nothing is allocated from a length field, so a
//!   claimed size of 4 GiB costs nothing and is reported as a truncated event;
//! * the walk advances by `event_size ≥ header_len ≥ 19` bytes, so it always ends (log_pos,
//!   which could loop, is never followed);
//! * a later FDE in the same file (relay logs, concatenated binlogs) switches the format
//!   for the events after it, as mysqlbinlog does.

use super::error::{Error, ErrorKind};
use super::types;

/// `fe 62 69 6e`, the first four bytes of every binlog.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// `fd 62 69 6e`, MySQL 8.0.14+ encrypted binlog (spec §9).
pub const ENCRYPTED_MAGIC: [u8; 4] = [0xfd, b'b', b'i', b'n'];
/// Length of the common header every server from 5.0 on writes.
pub const COMMON_HEADER_LEN: usize = 19;
/// LOG_EVENT_BINLOG_IN_USE_F, only meaningful on the FDE.
pub const FLAG_IN_USE: u16 = 0x0001;
/// File offset of the FDE's flags byte holding the in-use bit (4 + 17).
pub const IN_USE_BYTE: usize = 21;

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The common event header (spec §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub timestamp: u32,
    pub type_code: u8,
    pub server_id: u32,
    pub event_size: u32,
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    /// Parse the first 19 bytes of `b` (None when shorter).
    pub fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < COMMON_HEADER_LEN {
            return None;
        }
        Some(Header {
            timestamp: u32le(b, 0),
            type_code: b[4],
            server_id: u32le(b, 5),
            event_size: u32le(b, 9),
            log_pos: u32le(b, 13),
            flags: u16le(b, 17),
        })
    }
}

/// Checksum algorithm of a file, from its FDE (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Server older than MySQL 5.6.1 / MariaDB 5.3: no algorithm byte, no trailers.
    NotAware,
    /// Checksum-aware server with `binlog_checksum=NONE` (algorithm 0, or 255 undefined).
    Off,
    /// Every event ends in a CRC32 of the bytes before it.
    Crc32,
}

/// What a Format_description_event says about the events after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub binlog_version: u16,
    pub server_version: String,
    pub create_timestamp: u32,
    pub header_len: u8,
    pub post_header_lens: Vec<u8>,
    pub checksum: Checksum,
}

impl Format {
    /// True when every event after this FDE carries a 4-byte CRC32 trailer.
    pub fn has_crc(&self) -> bool {
        self.checksum == Checksum::Crc32
    }

    /// Post-header length of `type_code` (0 when the FDE does not list it).
    pub fn post_header_len(&self, type_code: u8) -> usize {
        if type_code == 0 {
            return 0;
        }
        self.post_header_lens
            .get(type_code as usize - 1)
            .copied()
            .unwrap_or(0) as usize
    }

    /// True when this is a MariaDB server.
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }

    /// Same framing for the events that follow (what decides whether a cut must repeat
    /// an FDE): header length, post-header lengths, checksum, server version.
    pub fn same_framing(&self, other: &Format) -> bool {
        self.header_len == other.header_len
            && self.post_header_lens == other.post_header_lens
            && self.checksum == other.checksum
            && self.server_version == other.server_version
            && self.binlog_version == other.binlog_version
    }
}

/// The first three dotted numbers of a server version string ("10.11.19-MariaDB-…").
pub fn version_triple(v: &str) -> (u32, u32, u32) {
    let mut nums = [0u32; 3];
    let mut rest = v;
    for n in nums.iter_mut() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        *n = rest[..digits].parse().unwrap_or(0);
        rest = &rest[digits..];
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            None => break,
        }
    }
    (nums[0], nums[1], nums[2])
}

/// Checksum-aware ⇔ MySQL ≥ 5.6.1 or MariaDB ≥ 5.3.0 (spec §3, MariaDB `log_event.cc`
/// `get_checksum_alg`).
pub fn checksum_aware(server_version: &str) -> bool {
    let v = version_triple(server_version);
    if server_version.contains("MariaDB") {
        v >= (5, 3, 0)
    } else {
        v >= (5, 6, 1)
    }
}

/// Parse a whole FDE (`raw` = header + body + trailer). Errors are reported at `offset`.
/// The CRC (if any) is checked with the in-use flag masked (spec §4, FDE exception).
pub fn parse_fde(raw: &[u8], offset: u64, check_crc: bool) -> Result<Format, Error> {
    let bad = |why| Error::new(offset, ErrorKind::BadFde { why });
    // The FDE body always starts after the 19-byte common header, whatever header_len it
    // announces for the events after it (the Google 5.1.63 fixtures have 23..31).
    const BODY: usize = COMMON_HEADER_LEN;
    if raw.len() < BODY + 57 {
        return Err(bad("shorter than 76 bytes"));
    }
    let body = &raw[BODY..];
    let binlog_version = u16le(body, 0);
    if binlog_version != 4 {
        return Err(bad("binlog version is not 4"));
    }
    let sv = &body[2..52];
    let sv_len = sv.iter().position(|&c| c == 0).unwrap_or(sv.len());
    let server_version: String = String::from_utf8_lossy(&sv[..sv_len]).into_owned();
    let create_timestamp = u32le(body, 52);
    let header_len = body[56];
    if (header_len as usize) < COMMON_HEADER_LEN {
        return Err(bad("header length below 19"));
    }
    let (checksum, n) = if checksum_aware(&server_version) {
        if raw.len() < BODY + 57 + 5 {
            return Err(bad("too short for a checksum-aware server"));
        }
        let alg = raw[raw.len() - 5];
        if check_crc {
            let stored = u32le(raw, raw.len() - 4);
            let mut h = crc32fast::Hasher::new();
            h.update(&raw[..17]);
            h.update(&[raw[17] & !(FLAG_IN_USE as u8)]);
            h.update(&raw[18..raw.len() - 4]);
            let computed = h.finalize();
            if stored != computed {
                return Err(Error::new(offset, ErrorKind::Crc { stored, computed }));
            }
        }
        let cs = if alg == 1 {
            Checksum::Crc32
        } else {
            Checksum::Off
        };
        (cs, raw.len() - BODY - 57 - 5)
    } else {
        (Checksum::NotAware, raw.len() - BODY - 57)
    };
    Ok(Format {
        binlog_version,
        server_version,
        create_timestamp,
        header_len,
        post_header_lens: body[57..57 + n].to_vec(),
        checksum,
    })
}

/// One event: a slice of the file and where it starts.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub offset: u64,
    pub header: Header,
    /// The whole event: header, body and CRC trailer.
    pub raw: &'a [u8],
    pub header_len: u8,
    pub has_crc: bool,
}

impl<'a> Event<'a> {
    /// The body: after the (possibly longer than 19) header, before the CRC trailer.
    pub fn body(&self) -> &'a [u8] {
        let end = self.raw.len() - if self.has_crc { 4 } else { 0 };
        let start = (self.header_len as usize).min(end);
        &self.raw[start..end]
    }

    /// Offset just past this event.
    pub fn end(&self) -> u64 {
        self.offset + self.raw.len() as u64
    }

    pub fn type_code(&self) -> u8 {
        self.header.type_code
    }

    /// Check the CRC32 trailer (no-op without one). The FDE is checked with the in-use flag
    /// masked.
    pub fn verify_crc(&self) -> Result<(), Error> {
        if !self.has_crc {
            return Ok(());
        }
        let n = self.raw.len() - 4;
        let stored = u32le(self.raw, n);
        let computed = if self.header.type_code == types::FORMAT_DESCRIPTION {
            let mut h = crc32fast::Hasher::new();
            h.update(&self.raw[..17]);
            h.update(&[self.raw[17] & !(FLAG_IN_USE as u8)]);
            h.update(&self.raw[18..n]);
            h.finalize()
        } else {
            crc32fast::hash(&self.raw[..n])
        };
        if stored == computed {
            Ok(())
        } else {
            Err(Error::new(self.offset, ErrorKind::Crc { stored, computed }))
        }
    }
}

/// A binlog file's bytes with its first FDE parsed.
#[derive(Debug, Clone)]
pub struct Binlog<'a> {
    pub data: &'a [u8],
    /// The format of the first FDE (at offset 4).
    pub format: Format,
    /// The first FDE's whole bytes.
    pub fde_raw: &'a [u8],
    /// LOG_EVENT_BINLOG_IN_USE_F of the first FDE: file live, or the server crashed.
    pub in_use: bool,
}

impl<'a> Binlog<'a> {
    /// Check the magic and parse the FDE at offset 4 (its CRC verified when present).
    pub fn open(data: &'a [u8]) -> Result<Binlog<'a>, Error> {
        if data.is_empty() {
            return Err(Error::new(0, ErrorKind::Empty));
        }
        let magic = &data[..data.len().min(4)];
        if magic == ENCRYPTED_MAGIC {
            return Err(Error::new(0, ErrorKind::MysqlEncrypted));
        }
        if magic != MAGIC {
            return Err(Error::new(0, ErrorKind::NotBinlog));
        }
        let rest = &data[4..];
        let h = Header::parse(rest).ok_or(Error::new(
            4,
            ErrorKind::TruncatedHeader {
                have: rest.len() as u64,
                need: COMMON_HEADER_LEN as u64,
            },
        ))?;
        if h.type_code == types::START_EVENT_V3 {
            return Err(Error::new(4, ErrorKind::PreV4));
        }
        if h.type_code != types::FORMAT_DESCRIPTION {
            return Err(Error::new(
                4,
                ErrorKind::NoFde {
                    type_code: h.type_code,
                },
            ));
        }
        let size = h.event_size as u64;
        if size < (COMMON_HEADER_LEN + 57) as u64 {
            return Err(Error::new(
                4,
                ErrorKind::SizeTooSmall {
                    size,
                    min: (COMMON_HEADER_LEN + 57) as u64,
                },
            ));
        }
        if size > rest.len() as u64 {
            return Err(Error::new(
                4,
                ErrorKind::TruncatedEvent {
                    size,
                    have: rest.len() as u64,
                },
            ));
        }
        let fde_raw = &rest[..size as usize];
        let format = parse_fde(fde_raw, 4, true)?;
        Ok(Binlog {
            data,
            format,
            fde_raw,
            in_use: h.flags & FLAG_IN_USE != 0,
        })
    }

    /// File length.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Offset of the first event after the FDE.
    pub fn after_fde(&self) -> u64 {
        4 + self.fde_raw.len() as u64
    }

    /// The events from `pos` (which must be an event start) under `format` (the FDE in
    /// force there), CRCs checked when `check_crc`.
    pub fn events_at(&self, pos: u64, format: Format, check_crc: bool) -> Events<'a> {
        Events {
            data: self.data,
            pos,
            format,
            check_crc,
            state: State::Running,
        }
    }

    /// Every event from offset 4 (the FDE included), CRCs checked when `check_crc`.
    pub fn events(&self, check_crc: bool) -> Events<'a> {
        Events {
            data: self.data,
            pos: 4,
            format: self.format.clone(),
            check_crc,
            state: State::Running,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// After a Start_encryption event: every later event is ciphertext.
    Encrypted,
    Done,
}

/// Iterator over the events of one file. Yields at most one error, then ends.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    data: &'a [u8],
    pos: u64,
    format: Format,
    check_crc: bool,
    state: State,
}

impl<'a> Events<'a> {
    /// The format in force for the next event.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Offset of the next event.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Turn CRC checking on or off for the events after this point.
    pub fn set_check_crc(&mut self, on: bool) {
        self.check_crc = on;
    }

    fn fail(&mut self, e: Error) -> Option<Result<Event<'a>, Error>> {
        self.state = State::Done;
        Some(Err(e))
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<Event<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let len = self.data.len() as u64;
        match self.state {
            State::Done => return None,
            State::Encrypted if self.pos < len => {
                let e = Error::new(self.pos, ErrorKind::MariadbEncrypted);
                return self.fail(e);
            }
            _ => {}
        }
        if self.pos >= len {
            self.state = State::Done;
            return None;
        }
        let at = self.pos;
        let rest = &self.data[at as usize..];
        let hl = self.format.header_len as usize;
        if rest.len() < hl {
            return self.fail(Error::new(
                at,
                ErrorKind::TruncatedHeader {
                    have: rest.len() as u64,
                    need: hl as u64,
                },
            ));
        }
        let header = Header::parse(rest).expect("at least 19 bytes");
        let is_fde = header.type_code == types::FORMAT_DESCRIPTION;
        let size = header.event_size as u64;
        let has_crc = if is_fde { false } else { self.format.has_crc() };
        let min = if is_fde {
            (COMMON_HEADER_LEN + 57) as u64
        } else {
            hl as u64 + if has_crc { 4 } else { 0 }
        };
        if size < min {
            return self.fail(Error::new(at, ErrorKind::SizeTooSmall { size, min }));
        }
        if size > rest.len() as u64 {
            return self.fail(Error::new(
                at,
                ErrorKind::TruncatedEvent {
                    size,
                    have: rest.len() as u64,
                },
            ));
        }
        let raw = &rest[..size as usize];
        let mut ev = Event {
            offset: at,
            header,
            raw,
            header_len: self.format.header_len,
            has_crc,
        };
        if is_fde {
            match parse_fde(raw, at, self.check_crc) {
                Ok(f) => {
                    ev.has_crc = f.checksum != Checksum::NotAware;
                    ev.header_len = COMMON_HEADER_LEN as u8;
                    self.format = f;
                }
                Err(e) => return self.fail(e),
            }
        } else if self.check_crc {
            if let Err(e) = ev.verify_crc() {
                return self.fail(e);
            }
        }
        if header.type_code == types::START_ENCRYPTION {
            self.state = State::Encrypted;
        }
        self.pos = at + size;
        // start the next header's cache miss now (the caller works on this event
        // meanwhile), and the one after on a guess (events in a row are often alike in size)
        crate::sys::prefetch::prefetch(self.data, self.pos as usize);
        crate::sys::prefetch::prefetch(self.data, (self.pos + size) as usize);
        Some(Ok(ev))
    }
}
