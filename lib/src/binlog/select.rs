//! Which groups a cut window keeps: mysqlbinlog's options (`--start/--stop-datetime`,
//! `--start/--stop-position` as byte offset or MariaDB GTID list, `--include/--exclude-gtids`)
//! decided per *group*, never per event, so a transaction is kept or dropped whole.
//!
//! Spec: `shared/specs/mysql-binlog.md` §8 (peer rules) and §11 (group-aware semantics).
//! Where we differ from the peer, on purpose:
//! * a group's time is its largest event timestamp (the commit time, spec §7); the peer
//!   tests each event, so it can print half a group, which we never do;
//! * `--stop-position=N` keeps a group only when all its events start before N (the peer
//!   prints events starting before N, possibly half a group);
//! * `--start-position=N` in the middle of a group starts at the next group;
//! * `--start-datetime`: the window opens at the first group whose time is ≥ T, or at the
//!   first control event (not the FDE) with a timestamp ≥ T, like the peer's first event;
//! * `--server-id=N` keeps a group when its first event is from server N (the peer tests
//!   every event; a group's events all carry its server's id);
//! * start GTIDs skip groups of that domain with seq_no ≤ N (exclusive), stop GTIDs keep
//!   them up to seq_no N (inclusive) and end the cut when every listed domain is done.
//!
//! The stop rules are applied in file order like the peer: once a stop is reached nothing
//! after it is kept, even a later group with an older timestamp (a lock waiter, spec §7).

use super::group::{Group, Kind};
use super::gtid::{Gtid, GtidSet, MariadbGtid};

/// A cut window. Positions apply to the first (start) / last (stop) file only.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub start_time: Option<i64>,
    pub stop_time: Option<i64>,
    pub start_pos: Option<u64>,
    pub stop_pos: Option<u64>,
    pub start_gtids: Vec<MariadbGtid>,
    pub stop_gtids: Vec<MariadbGtid>,
    pub include: Option<GtidSet>,
    pub exclude: Option<GtidSet>,
    /// Keep only the groups written by this server (the first event's server id).
    pub server_id: Option<u32>,
}

/// The verdict on one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Skip,
    /// Keep this group, then nothing more (inclusive stop GTID).
    KeepThenStop,
    /// Drop this group and everything after it.
    Stop,
}

/// Why a stop happened (for messages and the look-ahead warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    Datetime,
    Position,
    Gtid,
}

/// Stateful selector, fed every group of every file in order.
#[derive(Debug, Clone)]
pub struct Selector {
    w: Window,
    started_time: bool,
    stop_done: Vec<bool>,
    pub stopped: Option<StopCause>,
}

impl Selector {
    pub fn new(w: Window) -> Selector {
        let n = w.stop_gtids.len();
        Selector {
            w,
            started_time: false,
            stop_done: vec![false; n],
            stopped: None,
        }
    }

    pub fn window(&self) -> &Window {
        &self.w
    }

    /// True once `--start-datetime` has opened the window.
    pub fn started_time(&self) -> bool {
        self.started_time
    }

    /// Which stop GTIDs have been reached (same order as the window's list).
    pub fn stop_gtids_done(&self) -> &[bool] {
        &self.stop_done
    }

    /// True when a control event `g` of file `file` lies inside the window read so far
    /// (past the start conditions, before a stop): where an Incident must not be ignored.
    pub fn in_window(&self, g: &Group<'_>, file: usize) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        if file == 0 && self.w.start_pos.is_some_and(|n| g.start < n) {
            return false;
        }
        self.w.start_time.is_none() || self.started_time
    }

    /// Decide about `g`, a group of file number `file` (of `files`).
    /// Control events are never kept by this function (the writer emits FDEs itself).
    pub fn decide(&mut self, g: &Group<'_>, file: usize, files: usize) -> Decision {
        if self.stopped.is_some() {
            return Decision::Stop;
        }
        let first = file == 0;
        let last = file + 1 == files;
        if first {
            if let Some(n) = self.w.start_pos {
                if g.start < n {
                    return Decision::Skip;
                }
            }
        }
        if last {
            if let Some(n) = self.w.stop_pos {
                if g.last_event >= n {
                    self.stopped = Some(StopCause::Position);
                    return Decision::Stop;
                }
            }
        }
        if g.kind == Kind::Control {
            // as the peer: the first event at or after --start-datetime opens the window,
            // control events (Gtid_list, Rotate, ...) included, the FDE excepted
            if let Some(t) = self.w.start_time {
                if g.first_type() != super::types::FORMAT_DESCRIPTION && i64::from(g.max_ts) >= t {
                    self.started_time = true;
                }
            }
            return Decision::Skip;
        }
        if let Some(t) = self.w.stop_time {
            if i64::from(g.max_ts) >= t {
                self.stopped = Some(StopCause::Datetime);
                return Decision::Stop;
            }
        }
        if let Some(t) = self.w.start_time {
            if !self.started_time {
                if i64::from(g.max_ts) < t {
                    return Decision::Skip;
                }
                self.started_time = true;
            }
        }
        let mut verdict = Decision::Keep;
        if let Gtid::Mariadb { domain, seq, .. } = g.gtid {
            if self
                .w
                .start_gtids
                .iter()
                .any(|s| s.domain == domain && seq <= s.seq)
            {
                return Decision::Skip;
            }
            if let Some(i) = self.w.stop_gtids.iter().position(|s| s.domain == domain) {
                if self.stop_done[i] || seq > self.w.stop_gtids[i].seq {
                    self.stop_done[i] = true;
                    verdict = Decision::Skip;
                } else if seq == self.w.stop_gtids[i].seq {
                    self.stop_done[i] = true;
                }
                if self.stop_done.iter().all(|&d| d) {
                    self.stopped = Some(StopCause::Gtid);
                    return if verdict == Decision::Skip {
                        Decision::Stop
                    } else {
                        Decision::KeepThenStop
                    };
                }
            }
        }
        // after the datetime rules, as the peer: another server's event still opens a
        // --start-datetime window and ends a --stop-datetime one
        if self.w.server_id.is_some_and(|id| id != g.server_id) {
            return Decision::Skip;
        }
        if let Some(inc) = &self.w.include {
            match g.gtid {
                Gtid::Mysql { sid, gno } if inc.contains(&sid, gno) => {}
                _ => return Decision::Skip,
            }
        }
        if let Some(exc) = &self.w.exclude {
            if let Gtid::Mysql { sid, gno } = g.gtid {
                if exc.contains(&sid, gno) {
                    return Decision::Skip;
                }
            }
        }
        verdict
    }
}
