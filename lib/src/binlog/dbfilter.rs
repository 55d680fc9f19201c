//! `--database=DB`: which databases the data events of a group belong to, so that a cut can
//! keep or drop the group whole.
//!
//! Spec: `shared/specs/mysql-binlog.md` §8 (the peer's rule) and §11 (never decompress to
//! cut). The peer (`mariadb-binlog --database`, `client/mysqlbinlog.cc`) tests each event:
//! * a Query (also Query_compressed, Execute_load_query) counts for its *default* database
//!   (the `USE` in force when it ran, stored in the event), not for the databases named in
//!   its text: `USE a; INSERT INTO b.t ...` belongs to `a`;
//! * the transaction keywords `BEGIN`, `COMMIT`, `ROLLBACK…`, `SAVEPOINT…` and `XA …` are
//!   always printed (they belong to no database);
//! * a Table_map counts for the database of its table; the rows events after it follow it;
//! * Gtid, Xid, XA_prepare, Intvar/Rand/User_var, Annotate_rows/Rows_query,
//!   Begin_load_query/Append_block and control events are always printed (no database).
//!
//! A group is then: [`DbVerdict::Neutral`] (no data event: `BEGIN; COMMIT`, `XA COMMIT`),
//! [`DbVerdict::Only`] (every data event is DB's), [`DbVerdict::None`] (none is),
//! [`DbVerdict::Mixed`] (some are: the peer would print part of it) or
//! [`DbVerdict::Opaque`] (a compressed Transaction_payload, an old LOAD DATA event or an
//! unknown type: the database cannot be known without decompressing or guessing).
//!
//! The completion of an XA transaction (`XA COMMIT 'x'`, a group of its own, Neutral) goes
//! with its prepared part: [`xa_role`] pairs them by XID, so the cut drops it when it dropped
//! the prepare (the peer prints an empty `XA START … XA PREPARE` instead).
//!
//! Invariant: pure over the group's bytes; a short or garbled event body never panics (it
//! makes the group Opaque).

use super::error::Error;
use super::group::{is_word, query_db_range, starts_with_words, statement_text, trimmed, Group};
use super::reader::{Binlog, Format};
use super::types::{self, Role};

/// What `--database=DB` can do with one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbVerdict {
    /// No data event at all (the peer prints all of it, whatever DB is).
    Neutral,
    /// Every data event belongs to DB.
    Only,
    /// No data event belongs to DB.
    None,
    /// Data events of DB and of `other` (the first other database met), at `at`.
    Mixed { other: Vec<u8>, at: u64 },
    /// An event whose database cannot be read without decompressing: type and offset.
    Opaque { type_code: u8, at: u64 },
}

/// Is a Query text one of the peer's transaction keywords (printed whatever the database)?
pub fn is_trans_keyword(text: &[u8]) -> bool {
    is_word(text, "BEGIN")
        || is_word(text, "COMMIT")
        || starts_with_words(text, "ROLLBACK")
        || starts_with_words(text, "SAVEPOINT")
        || starts_with_words(text, "XA ")
}

/// Default database of a Query / Query_compressed / Execute_load_query body (None when the
/// body is too short to hold it).
pub fn query_db<'a>(body: &'a [u8], type_code: u8, format: &Format) -> Option<&'a [u8]> {
    query_db_range(body, type_code, format).map(|r| &body[r])
}

/// Database of a Table_map body (table id of 6 bytes, or 4 with a 6-byte post-header).
pub fn table_map_db<'a>(body: &'a [u8], format: &Format) -> Option<&'a [u8]> {
    let ph = match format.post_header_len(types::TABLE_MAP) {
        0 => 8,
        n => n,
    };
    let len = *body.get(ph)? as usize;
    body.get(ph + 1..ph + 1 + len)
}

/// The verdict on group `g` of `b` (walked in `format`) for database `db`.
pub fn classify(
    b: &Binlog<'_>,
    g: &Group<'_>,
    format: Format,
    db: &[u8],
) -> Result<DbVerdict, Error> {
    let mut mine = false;
    let mut other: Option<(Vec<u8>, u64)> = None;
    let mut events = b.events_at(g.start, format, false);
    while let Some(ev) = events.next() {
        let ev = ev?;
        if ev.offset >= g.end {
            break;
        }
        let code = ev.type_code();
        let fmt = events.format();
        let name: Option<&[u8]> = match code {
            types::QUERY | types::QUERY_COMPRESSED | types::EXECUTE_LOAD_QUERY => {
                let text = if code == types::QUERY_COMPRESSED {
                    None
                } else {
                    statement_text(&ev, fmt)
                };
                if text.is_some_and(is_trans_keyword) {
                    continue;
                }
                match query_db(ev.body(), code, fmt) {
                    Some(d) => Some(d),
                    None => {
                        return Ok(DbVerdict::Opaque {
                            type_code: code,
                            at: ev.offset,
                        })
                    }
                }
            }
            types::TABLE_MAP => match table_map_db(ev.body(), fmt) {
                Some(d) => Some(d),
                None => {
                    return Ok(DbVerdict::Opaque {
                        type_code: code,
                        at: ev.offset,
                    })
                }
            },
            types::TRANSACTION_PAYLOAD
            | types::LOAD
            | types::NEW_LOAD
            | types::CREATE_FILE
            | types::EXEC_LOAD
            | types::DELETE_FILE => {
                return Ok(DbVerdict::Opaque {
                    type_code: code,
                    at: ev.offset,
                })
            }
            c if types::role(c) == Role::Unknown => {
                return Ok(DbVerdict::Opaque {
                    type_code: c,
                    at: ev.offset,
                })
            }
            _ => None,
        };
        let Some(name) = name else { continue };
        if name == db {
            mine = true;
        } else if other.is_none() {
            other = Some((name.to_vec(), ev.offset));
        }
        if mine {
            if let Some((o, at)) = other {
                return Ok(DbVerdict::Mixed { other: o, at });
            }
        }
    }
    Ok(match (mine, other) {
        (true, _) => DbVerdict::Only,
        (false, Some(_)) => DbVerdict::None,
        (false, None) => DbVerdict::Neutral,
    })
}

/// The part an XA transaction's group plays, and its XID (raw bytes, to compare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Xa {
    /// `XA START … XA END`, XA_prepare: the prepared part (has the changes).
    Prepare(Vec<u8>),
    /// `XA COMMIT` / `XA ROLLBACK` of a prepared transaction (no changes of its own).
    Complete(Vec<u8>),
}

/// MariaDB Gtid_event flags2: the group prepares / completes an XA transaction.
const FL_PREPARED_XA: u8 = 0x40;
const FL_COMPLETED_XA: u8 = 0x80;

/// The XID of a MariaDB Gtid event body of an XA group (format_id, lengths, data).
fn gtid_xid(body: &[u8]) -> Option<&[u8]> {
    let flags2 = *body.get(12)?;
    // right after flags2 (and the commit id, if any): no reserved bytes in XA groups
    let at = 13 + if flags2 & 0x02 != 0 { 8 } else { 0 };
    let head = body.get(at..at + 6)?;
    let n = head[4] as usize + head[5] as usize;
    body.get(at..at + 6 + n)
}

/// The XID text after `XA START`/`XA END`/`XA COMMIT`/`XA ROLLBACK` (MySQL writes these
/// as Query events); the same text in the prepare and the completion.
fn xa_text<'a>(text: &'a [u8], words: &[&str]) -> Option<&'a [u8]> {
    let t = trimmed(text);
    words.iter().find_map(|w| {
        let w = w.as_bytes();
        (t.len() > w.len() && t[..w.len()].eq_ignore_ascii_case(w)).then(|| trimmed(&t[w.len()..]))
    })
}

/// Whether group `g` prepares or completes an XA transaction, with its XID: MariaDB by the
/// XID in its Gtid event, MySQL by the text of its `XA START` / `XA COMMIT` Query.
pub fn xa_role(b: &Binlog<'_>, g: &Group<'_>, format: Format) -> Result<Option<Xa>, Error> {
    let mut events = b.events_at(g.start, format, false);
    let mut prepare = false;
    let mut key: Option<(bool, Vec<u8>)> = None;
    while let Some(ev) = events.next() {
        let ev = ev?;
        if ev.offset >= g.end {
            break;
        }
        match ev.type_code() {
            types::MARIADB_GTID => {
                let body = ev.body();
                let flags2 = body.get(12).copied().unwrap_or(0);
                if flags2 & (FL_PREPARED_XA | FL_COMPLETED_XA) != 0 {
                    if let Some(x) = gtid_xid(body) {
                        key = Some((flags2 & FL_COMPLETED_XA != 0, x.to_vec()));
                    }
                }
            }
            types::XA_PREPARE => prepare = true,
            types::QUERY if key.is_none() => {
                if let Some(t) = statement_text(&ev, events.format()) {
                    if let Some(x) = xa_text(t, &["XA START", "XA BEGIN"]) {
                        key = Some((false, x.to_vec()));
                    } else if let Some(x) = xa_text(t, &["XA COMMIT", "XA ROLLBACK"]) {
                        key = Some((true, x.to_vec()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(match key {
        Some((false, x)) if prepare => Some(Xa::Prepare(x)),
        Some((true, x)) if !prepare => Some(Xa::Complete(x)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::Binlog;

    #[test]
    fn keywords() {
        for t in [
            "BEGIN",
            " commit ",
            "ROLLBACK",
            "ROLLBACK TO sp",
            "SAVEPOINT `a`",
            "XA END 'x'",
        ] {
            assert!(is_trans_keyword(t.as_bytes()), "{t}");
        }
        for t in [
            "BEGIN NOT ATOMIC SELECT 1; END",
            "INSERT INTO t VALUES (1)",
            "XAX",
        ] {
            assert!(!is_trans_keyword(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn short_bodies_never_panic() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/binlog/mariadb-pitr/row-crc32/binlogs/mysql-bin.000001"
        ))
        .unwrap();
        let b = Binlog::open(&data).unwrap();
        let body = [0u8; 40];
        for n in 0..body.len() {
            for code in [
                types::QUERY,
                types::EXECUTE_LOAD_QUERY,
                types::QUERY_COMPRESSED,
            ] {
                let _ = query_db(&body[..n], code, &b.format);
            }
            let _ = table_map_db(&body[..n], &b.format);
        }
        // the db of a real Query: query_db reads "blog" from the second DDL
        let mut q = b
            .events(false)
            .map(Result::unwrap)
            .filter(|e| e.type_code() == types::QUERY);
        q.next();
        assert_eq!(
            query_db(q.next().unwrap().body(), types::QUERY, &b.format),
            Some(&b"blog"[..])
        );
    }
}
