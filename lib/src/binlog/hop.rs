//! Skipping the part of a file before a `--start-datetime` window without grouping it: a
//! header-only hop that finds a *resume point* from which the ordinary event/group walk can
//! start instead of offset 4 and decide exactly the same as if it had walked from 4.
//!
//! The resume point is the start of a GTID event (MariaDB Gtid, MySQL Gtid/Anonymous/Tagged:
//! every such event opens a new group in [`super::group::Groups`], whatever state the walk
//! was in), such that every event between the FDE and it is well framed, is neither an FDE
//! nor a Start_encryption event, and has a timestamp below `t`. Every group before it is
//! then skipped by the [`super::select::Selector`] when `t` is the smaller of the start and
//! stop datetimes and no position or GTID bound is given (the caller checks that), and the
//! format in force there is still the first FDE's.
//!
//! The hop is memory-latency bound (one cache miss per event), so it runs several chains at
//! once: the region is split into segments; every segment after the first starts at a
//! candidate event found by resynchronising (a header whose `log_pos` equals its offset plus
//! its size, as v4 servers write in binlogs, followed by more such events). A candidate is
//! only trusted when the chain before it lands exactly on it — chains are deterministic, so
//! from there on it *is* the sequential walk. Otherwise (a fake header in a payload, a relay
//! log or concatenated file whose `log_pos` does not match) the chain before simply walks on
//! through the segment. The result is identical to [`resume_point_seq`] in every case.
//!
//! Spec: `shared/specs/mysql-binlog.md` §2 (common header, log_pos), §6 (GTID events open
//! groups), §8 (per-event start rule).

use super::mapped::Pager;
use super::reader::{Binlog, COMMON_HEADER_LEN};
use super::types::{self, Role};

/// Segments shorter than this are not split off (the resync scan costs more than it saves).
const MIN_SEGMENT: u64 = 4 << 20;
/// [`resume_point`] first walks this many bytes sequentially.
const PROBE: u64 = 256 << 10;
/// How far past a segment's nominal start the resync scan looks for a candidate.
const RESYNC_SCAN: u64 = 64 << 10;
/// Events a candidate must chain through (each with a matching log_pos) to be used.
const RESYNC_CHAIN: usize = 4;
/// Pages are given back in aligned blocks of this size (a PMD mapping on x86-64).
const HUGE_PAGE: u64 = 2 << 20;

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `true` for the type codes that always open a group.
fn gtid_table() -> [bool; 256] {
    let mut t = [false; 256];
    for (c, v) in t.iter_mut().enumerate() {
        *v = types::role(c as u8) == Role::GtidStart;
    }
    t
}

fn known_table() -> [bool; 256] {
    let mut t = [false; 256];
    for (c, v) in t.iter_mut().enumerate() {
        *v = types::role(c as u8) != Role::Unknown;
    }
    t
}

/// The part of [`super::reader::Events`]'s framing checks the hop needs, for one format.
struct Walker<'a> {
    data: &'a [u8],
    hl: usize,
    min: u64,
    t: i64,
    gtid: [bool; 256],
}

/// One chain: hops from `pos` until an event at or past `end`, or a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chain {
    /// Where the chain began.
    start: u64,
    pos: u64,
    end: u64,
    /// Start of the last GTID event seen (up to and including the stop event).
    last_gtid: Option<u64>,
    /// Ended on an event that must not be passed (timestamp ≥ t, FDE, Start_encryption,
    /// framing problem) rather than at `end`.
    stopped: bool,
    /// The pages from here to `pos` have not been given back yet.
    released: u64,
}

impl Chain {
    fn new(pos: u64, end: u64) -> Chain {
        Chain {
            start: pos,
            pos,
            end,
            last_gtid: None,
            stopped: false,
            released: pos.next_multiple_of(HUGE_PAGE),
        }
    }
    fn running(&self) -> bool {
        !self.stopped && self.pos < self.end
    }

    /// Give back the aligned blocks from where the last release ended to `edge`.
    fn release_to(&mut self, pager: &dyn Pager, edge: u64) {
        if edge > self.released {
            pager.release(self.released, edge - self.released);
            self.released = edge;
        }
    }
}

impl Walker<'_> {
    /// One event of `c`; false when the chain is finished.
    #[inline(always)]
    fn advance(&self, c: &mut Chain) -> bool {
        if c.pos >= c.end {
            return false;
        }
        let at = c.pos as usize;
        let rest = self.data.len() - at;
        if rest < self.hl {
            c.stopped = true;
            return false;
        }
        let h = &self.data[at..at + COMMON_HEADER_LEN];
        let code = h[4];
        let size = u64::from(u32le(h, 9));
        if code == types::FORMAT_DESCRIPTION
            || code == types::START_ENCRYPTION
            || size < self.min
            || size > rest as u64
        {
            c.stopped = true;
            return false;
        }
        if self.gtid[code as usize] {
            c.last_gtid = Some(c.pos);
        }
        if i64::from(u32le(h, 0)) >= self.t {
            c.stopped = true;
            return false;
        }
        c.pos += size;
        c.pos < c.end
    }

    fn run(&self, c: &mut Chain) {
        while self.advance(c) {}
    }

    /// Run all `chains` interleaved, one event each per round, so that their cache misses
    /// overlap.
    fn run_interleaved(&self, chains: &mut [Chain], pager: &dyn Pager) {
        let mut live: Vec<usize> = (0..chains.len()).collect();
        while !live.is_empty() {
            for &i in &live {
                let c = &mut chains[i];
                // one event per visit, then start the next header's cache misses: the other
                // chains' work hides them. The fields `advance` reads end at byte 13, which
                // is in the next cache line for one header in five.
                self.advance(c);
                crate::sys::prefetch::prefetch(self.data, c.pos as usize);
                crate::sys::prefetch::prefetch(self.data, c.pos as usize + 12);
            }
            live.retain(|&i| {
                let c = &mut chains[i];
                if c.running() {
                    return true;
                }
                if !c.stopped {
                    // the whole segment was hopped: nothing of it is read again, and the
                    // block it shares with the next segment has been left by that chain
                    // long ago (chains hop at the same pace)
                    c.release_to(pager, c.pos.next_multiple_of(HUGE_PAGE));
                }
                false
            });
        }
    }

    /// Could an event start at `p`? Framing as above plus `log_pos == p + size`.
    fn plausible(&self, p: u64, known: &[bool; 256]) -> Option<u64> {
        let at = p as usize;
        let rest = self.data.len().checked_sub(at)?;
        if rest < self.hl.max(COMMON_HEADER_LEN) {
            return None;
        }
        let h = &self.data[at..at + COMMON_HEADER_LEN];
        let size = u64::from(u32le(h, 9));
        let log_pos = u64::from(u32le(h, 13));
        if log_pos != (p + size) & 0xffff_ffff || size < self.min || size > rest as u64 {
            return None;
        }
        let code = h[4];
        if !known[code as usize] || code == types::FORMAT_DESCRIPTION {
            return None;
        }
        Some(size)
    }

    /// The first offset in `from..from + RESYNC_SCAN` where a chain of plausible events
    /// starts (or that chain reaches the end of the file).
    fn resync(&self, from: u64, known: &[bool; 256]) -> Option<u64> {
        let len = self.data.len() as u64;
        let limit = (from + RESYNC_SCAN).min(len.saturating_sub(COMMON_HEADER_LEN as u64));
        'cand: for p in from..limit {
            let mut q = p;
            for _ in 0..RESYNC_CHAIN {
                if q == len {
                    break;
                }
                match self.plausible(q, known) {
                    Some(size) => q += size,
                    None => continue 'cand,
                }
            }
            return Some(p);
        }
        None
    }
}

/// Up to `n - 1` likely event starts after the FDE, near `len / n * k` (k = 1..n), in
/// rising order, found by the resync scan (log_pos matching; see the module doc). Only
/// candidates: a walk that uses one must check that the walk before it lands there.
pub fn split_candidates(b: &Binlog<'_>, n: usize) -> Vec<u64> {
    let w = walker(b, i64::MAX);
    let known = known_table();
    let first = b.after_fde();
    let len = b.len();
    let mut out: Vec<u64> = Vec::new();
    for k in 1..n as u64 {
        let nominal = first + (len.saturating_sub(first)) / n as u64 * k;
        if let Some(o) = w.resync(nominal, &known) {
            if o > out.last().copied().unwrap_or(first) {
                out.push(o);
            }
        }
    }
    out
}

fn walker<'a>(b: &Binlog<'a>, t: i64) -> Walker<'a> {
    let hl = b.format.header_len as usize;
    Walker {
        data: b.data,
        hl,
        min: hl as u64 + if b.format.has_crc() { 4 } else { 0 },
        t,
        gtid: gtid_table(),
    }
}

/// The resume point by one sequential hop from the first event after the FDE: the start of
/// the last GTID event at or before the first event that must not be passed (see the
/// module doc), or None when there is none (start at offset 4 then).
pub fn resume_point_seq(b: &Binlog<'_>, t: i64) -> Option<u64> {
    let w = walker(b, t);
    let mut c = Chain::new(b.after_fde(), b.len());
    w.run(&mut c);
    c.last_gtid
}

/// [`resume_point_seq`], computed by up to `chains` interleaved chains on up to `threads`
/// threads. `pager` is asked to give back each segment hopped whole, in aligned 2 MiB
/// blocks (a memory map: unmapped in parallel, by the thread that read it, rather than at
/// exit). Nothing is populated ahead: plain page faults (fault-around maps 16 pages, or a
/// whole large folio, per fault) cost less here than MADV_POPULATE_READ's page walk, and
/// giving pages back while a chain is still in its segment cost more than it saved
/// (measured on a 650 MB binlog, Linux 6.18, both page-cache states: 6.7 → 4.7 ms read
/// back, 16.1 → 14.5 ms after small writes).
pub fn resume_point(
    b: &Binlog<'_>,
    t: i64,
    chains: usize,
    threads: usize,
    pager: &dyn Pager,
) -> Option<u64> {
    // a short sequential look first: when the window starts near the beginning of the file
    // (or the file is small) the answer is there, and no chain or thread is set up
    let w = walker(b, t);
    let first = b.after_fde();
    let mut probe = Chain::new(first, b.len().min(first + PROBE));
    w.run(&mut probe);
    if probe.stopped || probe.pos >= b.len() {
        return probe.last_gtid;
    }
    resume_point_with(b, t, chains, threads, MIN_SEGMENT, pager)
}

/// [`resume_point`] with segments as short as `min_segment` bytes (tests and fuzzing split
/// small files into many chains with it).
pub fn resume_point_with(
    b: &Binlog<'_>,
    t: i64,
    chains: usize,
    threads: usize,
    min_segment: u64,
    pager: &dyn Pager,
) -> Option<u64> {
    let w = walker(b, t);
    let known = known_table();
    let first = b.after_fde();
    let len = b.len();
    let n = (chains as u64).clamp(1, ((len - first.min(len)) / min_segment).max(1));
    // segment starts: the first after the FDE, the others resynchronised
    let mut starts = vec![first];
    for k in 1..n {
        let nominal = first + (len - first) / n * k;
        if let Some(o) = w.resync(nominal, &known) {
            if o > *starts.last().unwrap_or(&0) {
                starts.push(o);
            }
        }
    }
    let mut segs: Vec<Chain> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| Chain::new(s, starts.get(i + 1).copied().unwrap_or(len)))
        .collect();
    let threads = threads.clamp(1, segs.len());
    if threads == 1 {
        w.run_interleaved(&mut segs, pager);
    } else {
        // chain i on thread i % threads: every thread gets chains from the whole file, so
        // the ones before the window (the only ones with work) are shared out
        let mut parts: Vec<Vec<Chain>> = (0..threads)
            .map(|t| segs.iter().skip(t).step_by(threads).copied().collect())
            .collect();
        std::thread::scope(|s| {
            let w = &w;
            for part in parts.iter_mut() {
                s.spawn(move || w.run_interleaved(part, pager));
            }
        });
        for (t, part) in parts.into_iter().enumerate() {
            for (j, c) in part.into_iter().enumerate() {
                segs[t + j * threads] = c;
            }
        }
    }
    combine(&w, &segs)
}

/// Join the chains in file order: chain i+1 counts only if chain i landed on its start.
fn combine(w: &Walker<'_>, segs: &[Chain]) -> Option<u64> {
    let mut last = None;
    let mut cur = segs[0];
    let mut i = 0;
    loop {
        if cur.last_gtid.is_some() {
            last = cur.last_gtid;
        }
        if cur.stopped || i + 1 == segs.len() {
            return last;
        }
        i += 1;
        if cur.pos == segs[i].start {
            cur = segs[i];
        } else {
            // the candidate was not an event of the sequential walk: walk its segment
            let mut c = Chain::new(cur.pos, segs[i].end);
            w.run(&mut c);
            cur = c;
        }
    }
}

#[cfg(test)]
mod tests;
