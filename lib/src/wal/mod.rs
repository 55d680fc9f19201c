//! PostgreSQL write-ahead log files as an archive sees them: names, the page header of a
//! segment, timeline history files, LZ4 frames and walarchive's stored-file naming.
//!
//! Everything here is a pure function over `&str` / `&[u8]` (spec
//! `shared/specs/pg-wal-archive.md` §4–§5); the tool layers I/O on top with
//! [`crate::durable`]. Parsers never panic on any input (fuzzed by `fuzz/fuzz_targets/wal.rs`).

pub mod history;
pub mod lz4frame;
pub mod name;
pub mod page;
pub mod store;

pub use history::{parse_history, HistoryEntry, HistoryError};
pub use name::{NameError, WalKind, WalName};
pub use page::{check_segment, LongHeader, PageError};
pub use store::{ArchiveInfo, StoredError, StoredName};
