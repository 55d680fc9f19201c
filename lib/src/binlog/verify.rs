//! Checking a whole file: framing and every CRC32, split over threads at event boundaries.
//!
//! The split points are found by hopping from header to header (no CRC) up to the last
//! split; each part is then walked and CRC-checked on its own thread from the format in
//! force at its start. The result is the same as one sequential walk: the number of good
//! events before the first error, and that error (the earliest one in file order).

use super::error::Error;
use super::reader::{Binlog, Format};

/// Files smaller than this are checked on one thread.
const PARALLEL_MIN: u64 = 32 << 20;

fn walk(b: &Binlog<'_>, start: u64, end: u64, format: Format) -> (u64, Option<Error>) {
    let mut n = 0;
    for ev in b.events_at(start, format, true) {
        match ev {
            Ok(e) if e.offset >= end => break,
            Ok(e) => {
                n += 1;
                if e.end() >= end {
                    break;
                }
            }
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Walk every event of `b` checking its CRC32, on up to `threads` threads.
/// Returns the number of good events before the first problem, and the problem.
pub fn verify_all(b: &Binlog<'_>, threads: usize) -> (u64, Option<Error>) {
    let len = b.len();
    if threads <= 1 || len < PARALLEL_MIN {
        return walk(b, 4, len, b.format.clone());
    }
    let mut splits: Vec<(u64, Format)> = vec![(4, b.format.clone())];
    let mut targets = (1..threads as u64)
        .map(|i| len / threads as u64 * i)
        .peekable();
    let mut it = b.events(false);
    while let Some(&t) = targets.peek() {
        let pos = it.position();
        if pos >= t {
            splits.push((pos, it.format().clone()));
            targets.next();
            continue;
        }
        match it.next() {
            Some(Ok(_)) => {}
            // a framing error: the part that contains it reports it
            _ => break,
        }
    }
    let bounds: Vec<(u64, u64, Format)> = splits
        .iter()
        .enumerate()
        .map(|(i, (s, f))| (*s, splits.get(i + 1).map(|x| x.0).unwrap_or(len), f.clone()))
        .collect();
    let results: Vec<(u64, Option<Error>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = bounds
            .into_iter()
            .map(|(s, e, f)| sc.spawn(move || walk(b, s, e, f)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or((0, None)))
            .collect()
    });
    let mut total = 0;
    for (n, err) in results {
        total += n;
        if err.is_some() {
            return (total, err);
        }
    }
    (total, None)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
