//! Checking a whole file: framing and every CRC32, split over threads at event boundaries.
//!
//! The file is cut at candidate event starts found by resynchronising on `log_pos` (see
//! [`super::hop`]); each part is walked and CRC-checked on its own thread from the first
//! FDE's format. A part's result counts only when the walk before it ended exactly on its
//! first event, under that same format: then it *is* the sequential walk from there.
//! Otherwise the walk before simply goes on through that part (a relay log, a concatenated
//! file, a candidate inside a payload). The result is the same as one sequential walk: the
//! number of good events before the first error, and that error (the earliest in file
//! order).
//!
//! Each walker maps the pages just ahead of it and releases those behind it ([`Pager`]),
//! so mapping and unmapping run on every thread instead of once up front and at exit.

use super::error::Error;
use super::mapped::{NoPager, Pager};
use super::reader::{Binlog, Format};

/// Files smaller than this are checked on one thread.
const PARALLEL_MIN: u64 = 32 << 20;
/// Pages are asked for this many bytes at a time, ahead of each walker.
const CHUNK: u64 = 4 << 20;

/// Where a part's walk ended.
struct Part {
    good: u64,
    err: Option<Error>,
    /// Offset of the next event, and the format in force for it.
    pos: u64,
    format: Format,
}

fn walk(b: &Binlog<'_>, start: u64, end: u64, format: Format, pager: &dyn Pager) -> Part {
    let mut good = 0;
    let mut it = b.events_at(start, format, true);
    let mut mapped_from = start;
    let mut mapped_to = start;
    while it.position() < end {
        let pos = it.position();
        if pos >= mapped_to {
            let behind = pos & !4095;
            if behind > mapped_from {
                pager.release(mapped_from, behind - mapped_from);
            }
            pager.populate(pos, CHUNK);
            mapped_from = pos;
            mapped_to = pos + CHUNK;
        }
        match it.next() {
            Some(Ok(_)) => good += 1,
            Some(Err(e)) => {
                return Part {
                    good,
                    err: Some(e),
                    pos,
                    format: it.format().clone(),
                }
            }
            None => break,
        }
    }
    Part {
        good,
        err: None,
        pos: it.position(),
        format: it.format().clone(),
    }
}

/// Walk every event of `b` checking its CRC32, on up to `threads` threads.
/// Returns the number of good events before the first problem, and the problem.
pub fn verify_all(b: &Binlog<'_>, threads: usize) -> (u64, Option<Error>) {
    verify_all_paged(b, threads, &NoPager)
}

/// [`verify_all`], with `pager` asked to map each chunk ahead of the walkers and to
/// release what they have passed.
pub fn verify_all_paged(b: &Binlog<'_>, threads: usize, pager: &dyn Pager) -> (u64, Option<Error>) {
    verify_with(b, threads, PARALLEL_MIN, pager)
}

fn verify_with(
    b: &Binlog<'_>,
    threads: usize,
    parallel_min: u64,
    pager: &dyn Pager,
) -> (u64, Option<Error>) {
    let len = b.len();
    if threads <= 1 || len < parallel_min {
        let p = walk(b, 4, len, b.format.clone(), pager);
        return (p.good, p.err);
    }
    let mut starts = vec![4];
    starts.extend(super::hop::split_candidates(b, threads));
    let bounds: Vec<(u64, u64)> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(len)))
        .collect();
    let parts: Vec<Part> = std::thread::scope(|sc| {
        let hs: Vec<_> = bounds
            .iter()
            .map(|&(s, e)| sc.spawn(move || walk(b, s, e, b.format.clone(), pager)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("verify worker panicked"))
            .collect()
    });
    let mut total = 0;
    let mut cur = None::<Part>;
    for (i, p) in parts.into_iter().enumerate() {
        let next = match cur.take() {
            None => p,
            // the walk before landed on this part's first event, in the same format
            Some(c) if c.pos == bounds[i].0 && c.format == b.format => p,
            // it did not: walk this part on from where it is
            Some(c) => walk(b, c.pos, bounds[i].1, c.format, pager),
        };
        total += next.good;
        if next.err.is_some() {
            return (total, next.err);
        }
        cur = Some(next);
    }
    (total, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(d: &[u8], what: &str) {
        let b = Binlog::open(d).unwrap();
        let seq = verify_all(&b, 1);
        for threads in [2, 3, 8] {
            assert_eq!(
                verify_with(&b, threads, 0, &NoPager),
                seq,
                "{what}, {threads} threads"
            );
        }
    }

    #[test]
    fn parallel_equals_sequential() {
        // a big synthetic file: the pitr fixture's events repeated (CRCs stay valid)
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/binlog/mariadb-pitr/row-crc32/binlogs/mysql-bin.000001");
        let d = std::fs::read(p).unwrap();
        let b = Binlog::open(&d).unwrap();
        let body = &d[b.after_fde() as usize..];
        let mut big = d[..b.after_fde() as usize].to_vec();
        while (big.len() as u64) < PARALLEL_MIN + (1 << 20) {
            big.extend_from_slice(body);
        }
        let b = Binlog::open(&big).unwrap();
        let seq = verify_all(&b, 1);
        assert!(seq.1.is_none());
        assert_eq!(verify_all(&b, 2), seq);
        assert_eq!(verify_all(&b, 3), seq);
        // a bad byte in the second half: same error, same count
        let at = big.len() * 3 / 4;
        big[at] ^= 1;
        let b = Binlog::open(&big).unwrap();
        let seq = verify_all(&b, 1);
        assert!(seq.1.is_some());
        assert_eq!(verify_all(&b, 2), seq);
    }

    #[test]
    fn parallel_equals_sequential_on_every_fixture_and_damage() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/binlog");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        for p in files {
            let d = std::fs::read(&p).unwrap();
            if Binlog::open(&d).is_err() {
                continue;
            }
            let name = p.display().to_string();
            check(&d, &name);
            // a flipped byte at a few places, a cut-off tail
            for frac in [3, 2] {
                let mut x = d.clone();
                let at = x.len() / frac + 1;
                x[at] ^= 0x20;
                if Binlog::open(&x).is_ok() {
                    check(&x, &format!("{name} flipped at {at}"));
                }
            }
            let cut = &d[..d.len() - d.len() / 5];
            if Binlog::open(cut).is_ok() {
                check(cut, &format!("{name} truncated"));
            }
        }
    }
}
