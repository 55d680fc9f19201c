//! Transaction (event group) boundaries: turns the event stream of one file into groups
//! that a replica applies atomically, plus the control events between them.
//!
//! Spec: `shared/specs/mysql-binlog.md` §6 (MariaDB Gtid + FL_STANDALONE; MySQL
//! Gtid/Anonymous_gtid + BEGIN…Xid/COMMIT, one DDL, or one Transaction_payload; pre-GTID
//! BEGIN…Xid, Intvar/Rand/User_var prefixes, LOAD DATA blocks), following the rules of
//! MariaDB `sql/sql_repl.cc` and `log_event.h` `is_part_of_group`.
//!
//! Invariants: groups tile the events they cover (a group is `start..end`, contiguous, in
//! file order); a group still open when the file ends (live or crashed file) or when the
//! next group starts is yielded with `complete == false`; a control event met inside an
//! open group (fake Rotate/FDE in a relay log) stays inside it.

use super::error::Error;
use super::gtid::{self, Gtid};
use super::reader::{Event, Events, Format};
use super::types::{self, Role};

/// What a [`Group`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A transaction / statement group.
    Transaction,
    /// One control event (FDE, Rotate, Stop, Gtid_list, Incident, ...): not part of any group.
    Control,
    /// One event of a type no known server writes.
    Unknown,
}

/// Distinct event types of a group, in order of first appearance (at most 10 kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeList {
    codes: [u8; 10],
    len: u8,
    pub more: bool,
}

impl TypeList {
    fn add(&mut self, code: u8) {
        if self.codes[..self.len as usize].contains(&code) {
            return;
        }
        if (self.len as usize) < self.codes.len() {
            self.codes[self.len as usize] = code;
            self.len += 1;
        } else {
            self.more = true;
        }
    }
    pub fn codes(&self) -> &[u8] {
        &self.codes[..self.len as usize]
    }
    pub fn contains(&self, code: u8) -> bool {
        self.codes().contains(&code)
    }
}

/// A transaction group or a control event, with what `list` and the cut rules need.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub kind: Kind,
    /// Offset of the first event.
    pub start: u64,
    /// Offset just past the last event.
    pub end: u64,
    /// Offset of the last event.
    pub last_event: u64,
    pub first_ts: u32,
    /// Server id of the first event (the server that wrote the transaction).
    pub server_id: u32,
    /// Largest header timestamp in the group: the commit time in practice (spec §7).
    pub max_ts: u32,
    pub events: u32,
    pub gtid: Gtid,
    pub types: TypeList,
    /// First statement text: a Query other than BEGIN/COMMIT, or Annotate_rows/Rows_query.
    pub statement: Option<&'a [u8]>,
    /// Every Query/Annotate text, when collecting was asked for.
    pub statements: Vec<&'a [u8]>,
    /// False when the file (or the next group) began before this group's end event.
    pub complete: bool,
    /// Type code of the first event of a type no known server writes, if any.
    pub unknown_type: Option<u8>,
}

impl Group<'_> {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
    /// Type code of a one-event control group.
    pub fn first_type(&self) -> u8 {
        self.types.codes().first().copied().unwrap_or(0)
    }
}

/// Statement text of a Query (2) or Execute_load_query (18), Annotate_rows (160) or
/// Rows_query (29) event; None for other types and for compressed queries.
pub fn statement_text<'a>(ev: &Event<'a>, format: &Format) -> Option<&'a [u8]> {
    let body = ev.body();
    match ev.type_code() {
        types::QUERY | types::EXECUTE_LOAD_QUERY => {
            let db = query_db_range(body, ev.type_code(), format)?;
            body.get(db.end + 1..)
        }
        types::ANNOTATE_ROWS => Some(body),
        types::ROWS_QUERY => body.get(1..),
        _ => None,
    }
}

/// Where a Query / Query_compressed / Execute_load_query body keeps its default database
/// name (after the post-header and the status variables); None when the body is too short
/// to hold it.
pub(crate) fn query_db_range(
    body: &[u8],
    type_code: u8,
    format: &Format,
) -> Option<std::ops::Range<usize>> {
    let ph = match format.post_header_len(type_code) {
        0 if type_code == types::EXECUTE_LOAD_QUERY => 26,
        0 => 13,
        n => n,
    };
    if body.len() < ph.max(11) {
        return None;
    }
    let db_len = body[8] as usize;
    let status_len = if ph >= 13 {
        u16::from_le_bytes([body[11], body[12]]) as usize
    } else {
        0
    };
    let at = ph + status_len;
    (at + db_len <= body.len()).then_some(at..at + db_len)
}

/// `t` without leading and trailing whitespace and NUL bytes (Query texts).
pub(super) fn trimmed(t: &[u8]) -> &[u8] {
    let s = t
        .iter()
        .position(|c| !c.is_ascii_whitespace() && *c != 0)
        .unwrap_or(t.len());
    let e = t
        .iter()
        .rposition(|c| !c.is_ascii_whitespace() && *c != 0)
        .map(|i| i + 1)
        .unwrap_or(s);
    &t[s..e.max(s)]
}

/// Is trimmed `t` the word(s) `w`, in any case?
pub(super) fn is_word(t: &[u8], w: &str) -> bool {
    trimmed(t).eq_ignore_ascii_case(w.as_bytes())
}

/// Does trimmed `t` start with `w`, in any case?
pub(super) fn starts_with_words(t: &[u8], w: &str) -> bool {
    let t = trimmed(t);
    t.len() >= w.len() && t[..w.len()].eq_ignore_ascii_case(w.as_bytes())
}

/// How a Query reads for grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Q {
    Begin,
    End,
    Other,
    /// A rows event with STMT_END_F: the last rows event of its statement.
    StmtEnd,
}

/// STMT_END_F of a rows event (flags u16 right after the table id, whose width is 6 bytes,
/// or 4 when the post-header is 6 bytes long: MySQL 5.1.0–5.1.15).
fn rows_stmt_end(ev: &Event<'_>, format: &Format) -> bool {
    let ph = format.post_header_len(ev.type_code());
    let at = if ph == 6 { 4 } else { 6 };
    ev.body().get(at).is_some_and(|f| f & 0x01 != 0)
}

fn classify(ev: &Event<'_>, format: &Format, text: Option<&[u8]>) -> Q {
    match ev.type_code() {
        types::QUERY => query_kind(text),
        c if types::is_rows(c) && rows_stmt_end(ev, format) => Q::StmtEnd,
        _ => Q::Other,
    }
}

fn query_kind(text: Option<&[u8]>) -> Q {
    match text {
        Some(t)
            if is_word(t, "BEGIN")
                || starts_with_words(t, "XA START")
                || starts_with_words(t, "XA BEGIN") =>
        {
            Q::Begin
        }
        Some(t) if is_word(t, "COMMIT") || is_word(t, "ROLLBACK") => Q::End,
        _ => Q::Other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// BEGIN / multi-statement: until Xid, XA_prepare, COMMIT, ROLLBACK.
    Trans,
    /// MariaDB FL_STANDALONE: Intvar/Rand/User_var/Table_map/Annotate, then one event.
    Standalone,
    /// Just after a MySQL Gtid/Anonymous_gtid: the next statement decides.
    AfterGtid,
    /// Intvar/Rand/User_var/LOAD blocks without a GTID: until the statement they prefix.
    Prefix,
    /// Row events without BEGIN (MySQL 5.1 non-transactional tables): until STMT_END_F.
    Rows,
}

enum Step {
    Continue(St),
    EndWith,
    CloseBefore,
}

fn step(st: St, code: u8, q: Q) -> Step {
    use Step::*;
    let role = types::role(code);
    if role == Role::GtidStart {
        return CloseBefore;
    }
    if code == types::INCIDENT {
        return CloseBefore;
    }
    if matches!(role, Role::Control | Role::Stream) {
        return Continue(st);
    }
    match st {
        St::Trans => match (code, q) {
            (types::XID | types::XA_PREPARE, _) => EndWith,
            (types::QUERY, Q::End) => EndWith,
            (types::QUERY, Q::Begin) => CloseBefore,
            _ => Continue(St::Trans),
        },
        St::Standalone => match code {
            types::INTVAR
            | types::RAND
            | types::USER_VAR
            | types::TABLE_MAP
            | types::ANNOTATE_ROWS => Continue(st),
            _ => EndWith,
        },
        St::Rows => match (code, q) {
            (_, Q::StmtEnd) => EndWith,
            (types::QUERY, Q::Begin) => CloseBefore,
            (types::QUERY | types::XID, _) => EndWith,
            _ => Continue(st),
        },
        St::AfterGtid | St::Prefix => match (code, q) {
            (types::QUERY, Q::Begin) => Continue(St::Trans),
            (types::QUERY | types::QUERY_COMPRESSED, _) => EndWith,
            (
                types::TRANSACTION_PAYLOAD | types::VIEW_CHANGE | types::XID | types::XA_PREPARE,
                _,
            ) => EndWith,
            (
                types::EXECUTE_LOAD_QUERY
                | types::EXEC_LOAD
                | types::DELETE_FILE
                | types::LOAD
                | types::NEW_LOAD,
                _,
            ) => EndWith,
            (c, _) if (c == types::TABLE_MAP || types::is_rows(c)) && st == St::AfterGtid => {
                Continue(St::Trans)
            }
            (c, Q::StmtEnd) if types::is_rows(c) => EndWith,
            (c, _) if c == types::TABLE_MAP || types::is_rows(c) => Continue(St::Rows),
            (types::BEGIN_LOAD_QUERY | types::CREATE_FILE | types::APPEND_BLOCK, _) => {
                Continue(St::Prefix)
            }
            _ => Continue(st),
        },
    }
}

/// What the first event of a new group makes of it: None = a one-event group.
fn opening(code: u8, q: Q, body_gtid: Gtid) -> Option<St> {
    if q == Q::StmtEnd {
        return None;
    }
    match types::role(code) {
        Role::GtidStart => match body_gtid {
            Gtid::Mariadb { flags2, .. } if flags2 & gtid::FL_STANDALONE != 0 => {
                Some(St::Standalone)
            }
            Gtid::Mariadb { .. } => Some(St::Trans),
            _ => Some(St::AfterGtid),
        },
        Role::Query if code == types::QUERY && q == Q::Begin => Some(St::Trans),
        Role::Query | Role::End => None,
        _ => match code {
            types::VIEW_CHANGE
            | types::LOAD
            | types::NEW_LOAD
            | types::EXEC_LOAD
            | types::DELETE_FILE
            | types::EXECUTE_LOAD_QUERY => None,
            c if c == types::TABLE_MAP || types::is_rows(c) => Some(St::Rows),
            types::TRANSACTION_PAYLOAD => Some(St::Trans),
            _ => Some(St::Prefix),
        },
    }
}

/// Iterator over the groups of one file. Yields the reader's error (after the group that
/// was open when it happened, marked incomplete) and then ends.
pub struct Groups<'a> {
    events: Events<'a>,
    held: Option<Event<'a>>,
    err: Option<Error>,
    collect: bool,
}

impl<'a> Groups<'a> {
    pub fn new(events: Events<'a>) -> Groups<'a> {
        Groups {
            events,
            held: None,
            err: None,
            collect: false,
        }
    }

    /// Keep every statement text in [`Group::statements`] (for `--grep`).
    pub fn collect_statements(mut self, on: bool) -> Self {
        self.collect = on;
        self
    }

    /// Offset of the next event not yet grouped.
    pub fn position(&self) -> u64 {
        self.held
            .map(|e| e.offset)
            .unwrap_or_else(|| self.events.position())
    }

    fn next_event(&mut self) -> Option<Event<'a>> {
        if let Some(e) = self.held.take() {
            return Some(e);
        }
        match self.events.next()? {
            Ok(e) => Some(e),
            Err(e) => {
                self.err = Some(e);
                None
            }
        }
    }

    fn new_group(&self, ev: &Event<'a>, kind: Kind) -> Group<'a> {
        Group {
            kind,
            start: ev.offset,
            end: ev.end(),
            last_event: ev.offset,
            first_ts: ev.header.timestamp,
            server_id: ev.header.server_id,
            max_ts: ev.header.timestamp,
            events: 0,
            gtid: Gtid::None,
            types: TypeList::default(),
            statement: None,
            statements: Vec::new(),
            complete: true,
            unknown_type: None,
        }
    }

    fn add(&self, g: &mut Group<'a>, ev: &Event<'a>, text: Option<&'a [u8]>, q: Q) {
        g.end = ev.end();
        g.last_event = ev.offset;
        g.max_ts = g.max_ts.max(ev.header.timestamp);
        g.events += 1;
        g.types.add(ev.type_code());
        if g.unknown_type.is_none() && types::role(ev.type_code()) == Role::Unknown {
            g.unknown_type = Some(ev.type_code());
        }
        if let Some(t) = text {
            if q == Q::Other && g.statement.is_none() {
                g.statement = Some(t);
            }
            if self.collect {
                g.statements.push(t);
            }
        }
    }
}

impl<'a> Iterator for Groups<'a> {
    type Item = Result<Group<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(first) = self.next_event() else {
            return self.err.take().map(Err);
        };
        let code = first.type_code();
        let role = types::role(code);
        let text = statement_text(&first, self.events.format());
        let q = classify(&first, self.events.format(), text);
        if matches!(role, Role::Control | Role::Stream | Role::Unknown) {
            let kind = if role == Role::Unknown {
                Kind::Unknown
            } else {
                Kind::Control
            };
            let mut g = self.new_group(&first, kind);
            self.add(&mut g, &first, text, q);
            return Some(Ok(g));
        }
        let mut g = self.new_group(&first, Kind::Transaction);
        g.gtid = gtid::decode(code, first.header.server_id, first.body());
        self.add(&mut g, &first, text, q);
        let Some(mut st) = opening(code, q, g.gtid) else {
            return Some(Ok(g));
        };
        loop {
            let Some(ev) = self.next_event() else {
                g.complete = false;
                return Some(Ok(g));
            };
            let code = ev.type_code();
            let text = statement_text(&ev, self.events.format());
            let q = classify(&ev, self.events.format(), text);
            match step(st, code, q) {
                Step::Continue(s) => {
                    self.add(&mut g, &ev, text, q);
                    st = s;
                }
                Step::EndWith => {
                    self.add(&mut g, &ev, text, q);
                    return Some(Ok(g));
                }
                Step::CloseBefore => {
                    self.held = Some(ev);
                    g.complete = false;
                    return Some(Ok(g));
                }
            }
        }
    }
}
