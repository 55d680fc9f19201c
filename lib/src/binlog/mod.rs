//! MySQL / MariaDB binary logs (format v4): a reader as pure functions over a file's bytes,
//! transaction grouping, and the cut-window rules of `binlogcut`.
//!
//! Spec: `shared/specs/mysql-binlog.md`. Layers, each usable alone:
//! * [`reader`] — magic, common header, Format_description_event, CRC32 trailers, event walk;
//! * [`types`] — every event type code of both servers, by code and name;
//! * [`group`] — transaction boundaries (GTID/BEGIN … Xid/COMMIT, standalone DDL, …);
//! * [`gtid`] — MariaDB and MySQL GTIDs, lists and sets;
//! * [`select`] — which groups a `--start/--stop-*` window keeps;
//! * [`dbfilter`] — which databases a group's events belong to (`--database`);
//! * [`hop`] — where a datetime window's plan may start without walking what is before it;
//! * [`verify`] — every CRC of a file, on several threads.
//!
//! Invariants: hostile input (sizes of 4 GiB, sizes below the header, garbage) gives an
//! [`Error`] naming the byte offset, never a panic, a hang or an allocation sized by the
//! input; events are slices of the input.

pub mod dbfilter;
pub mod error;
pub mod group;
pub mod gtid;
pub mod hop;
pub mod mapped;
pub mod reader;
pub mod select;
pub mod types;
pub mod verify;

pub use error::{Error, ErrorKind};
pub use group::{Group, Groups, Kind};
pub use gtid::{Gtid, GtidSet, MariadbGtid};
pub use reader::{Binlog, Checksum, Event, Events, Format, Header, MAGIC};
pub use select::{Decision, Selector, StopCause, Window};

/// Where a byte position falls in a file (for `--start-position`/`--stop-position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The start of an event (or of the FDE at 4).
    EventStart,
    /// Exactly the end of the last event.
    End,
    /// Inside the event that starts at `prev`; the next event starts at `next`.
    Inside { prev: u64, next: u64 },
    /// Before offset 4 (inside the magic).
    Magic,
    /// Past the end of the file (`len`).
    Beyond { len: u64 },
}

/// Hop from header to header (no CRC check) to find where `pos` falls.
/// A framing error before `pos` is returned as is.
pub fn locate(b: &Binlog<'_>, pos: u64) -> Result<Position, Error> {
    if pos < 4 {
        return Ok(Position::Magic);
    }
    let len = b.len();
    if pos > len {
        return Ok(Position::Beyond { len });
    }
    let mut prev = 4;
    for ev in b.events(false) {
        let ev = ev?;
        if ev.offset == pos {
            return Ok(Position::EventStart);
        }
        if ev.offset > pos {
            return Ok(Position::Inside {
                prev,
                next: ev.offset,
            });
        }
        prev = ev.offset;
        if ev.end() == len && pos == len {
            return Ok(Position::End);
        }
        if ev.end() > pos {
            return Ok(Position::Inside {
                prev,
                next: ev.end(),
            });
        }
    }
    Ok(Position::End)
}

#[cfg(test)]
mod tests;
