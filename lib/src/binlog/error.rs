//! Errors of the binlog reader: each names the byte offset (from the start of the file) of
//! the event at fault, so the tools can print `FILE: offset N: cause`.
//!
//! Invariant: building an error never allocates in proportion to the input (messages carry
//! numbers, not copies of event bytes).

use std::fmt;

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Byte offset in the file of the event (or magic) at fault.
    pub offset: u64,
    pub kind: ErrorKind,
}

/// The kinds of trouble a binlog can be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Zero bytes.
    Empty,
    /// The first four bytes are not `fe 62 69 6e` (nor the encrypted magic).
    NotBinlog,
    /// MySQL 8.0.14+ encrypted binlog (`fd 62 69 6e`).
    MysqlEncrypted,
    /// MariaDB `encrypt_binlog=ON`: a Start_encryption event; every later event is ciphertext.
    MariadbEncrypted,
    /// Binlog format v1/v3 (MySQL ≤ 4.1): Start_event_v3 instead of a Format_description_event.
    PreV4,
    /// The first event is not a Format_description_event.
    NoFde { type_code: u8 },
    /// A Format_description_event that cannot be parsed.
    BadFde { why: &'static str },
    /// Fewer bytes than an event header remain.
    TruncatedHeader { have: u64, need: u64 },
    /// The event claims more bytes than the file has.
    TruncatedEvent { size: u64, have: u64 },
    /// The event's size is shorter than its header (+ checksum).
    SizeTooSmall { size: u64, min: u64 },
    /// The stored CRC32 differs from the computed one.
    Crc { stored: u32, computed: u32 },
}

impl Error {
    pub fn new(offset: u64, kind: ErrorKind) -> Error {
        Error { offset, kind }
    }

    /// True for "the file ends in the middle of an event" (what a live or crashed server
    /// leaves behind), as opposed to damage inside the file.
    pub fn is_truncation(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::TruncatedHeader { .. } | ErrorKind::TruncatedEvent { .. }
        )
    }

    /// True when the file is encrypted (either server's scheme).
    pub fn is_encrypted(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::MysqlEncrypted | ErrorKind::MariadbEncrypted
        )
    }

    /// True when the bytes are not a (readable) v4 binlog at all, as opposed to a binlog
    /// with a damaged event.
    pub fn is_format(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Empty
                | ErrorKind::NotBinlog
                | ErrorKind::MysqlEncrypted
                | ErrorKind::MariadbEncrypted
                | ErrorKind::PreV4
                | ErrorKind::NoFde { .. }
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Empty => write!(f, "empty file, not a binary log"),
            ErrorKind::NotBinlog => write!(f, "not a binary log file (no fe 62 69 6e magic)"),
            ErrorKind::MysqlEncrypted => write!(
                f,
                "encrypted MySQL binary log (fd 62 69 6e magic): cannot be cut; read it through the server (mysqlbinlog --read-from-remote-server)"
            ),
            ErrorKind::MariadbEncrypted => write!(
                f,
                "encrypted MariaDB binary log (Start_encryption event): the rest is ciphertext; read it through the server (mariadb-binlog --read-from-remote-server)"
            ),
            ErrorKind::PreV4 => {
                write!(f, "binary log format v1/v3 (MySQL 4.x Start_event_v3, no format description event) is not supported")
            }
            ErrorKind::NoFde { type_code } => {
                write!(f, "first event is type {type_code}, not a format description event")
            }
            ErrorKind::BadFde { why } => write!(f, "bad format description event: {why}"),
            ErrorKind::TruncatedHeader { have, need } => {
                write!(f, "truncated event header: {have} of {need} bytes")
            }
            ErrorKind::TruncatedEvent { size, have } => {
                write!(f, "truncated event: size {size} but only {have} bytes left")
            }
            ErrorKind::SizeTooSmall { size, min } => {
                write!(f, "impossible event size {size} (less than {min})")
            }
            ErrorKind::Crc { stored, computed } => {
                write!(f, "CRC32 mismatch: stored {stored:08x}, computed {computed:08x}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for Error {}
