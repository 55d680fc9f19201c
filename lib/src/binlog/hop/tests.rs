//! The hop is exact: the parallel resume point equals the sequential one, and planning from
//! the resume point keeps exactly what planning from offset 4 keeps — on every fixture and
//! on synthetic files (log_pos matching offsets, relay-log style log_pos, concatenated
//! binlogs, payloads full of fake headers whose log_pos matches their offset).

use super::*;
use crate::binlog::mapped::NoPager;
use crate::binlog::reader::FLAG_IN_USE;
use crate::binlog::{Decision, Groups, Selector, Window};
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/binlog");
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut es: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap()).collect();
        es.sort_by_key(|e| e.path());
        for e in es {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                let d = std::fs::read(&p).unwrap();
                if Binlog::open(&d).is_ok() {
                    out.push((p.display().to_string(), d));
                }
            }
        }
    }
    walk(&root, &mut out);
    out
}

/// What a plan keeps: (start, end) of kept groups and whether it stopped, walking from
/// `from` (offset 4 = the whole file).
fn kept(b: &Binlog<'_>, w: &Window, from: Option<u64>) -> (Vec<(u64, u64)>, Option<u64>) {
    let mut sel = Selector::new(w.clone());
    let events = match from {
        Some(o) => b.events_at(o, b.format.clone(), false),
        None => b.events(false),
    };
    let mut out = Vec::new();
    for g in Groups::new(events) {
        let Ok(g) = g else {
            return (out, Some(u64::MAX));
        };
        match sel.decide(&g, 0, 1) {
            Decision::Keep => out.push((g.start, g.end)),
            Decision::KeepThenStop => {
                out.push((g.start, g.end));
                return (out, Some(g.end));
            }
            Decision::Stop => return (out, Some(g.start)),
            Decision::Skip => {}
        }
    }
    (out, None)
}

/// Every timestamp in the file, one below the smallest and one above the largest.
fn times(b: &Binlog<'_>) -> Vec<i64> {
    let mut ts: Vec<i64> = b
        .events(false)
        .map_while(Result::ok)
        .map(|e| i64::from(e.header.timestamp))
        .collect();
    ts.sort();
    ts.dedup();
    if ts.len() > 12 {
        let step = ts.len() / 12;
        ts = ts.into_iter().step_by(step).collect();
    }
    let (lo, hi) = (
        ts.first().copied().unwrap_or(0),
        ts.last().copied().unwrap_or(0),
    );
    ts.push(lo - 1);
    ts.push(hi + 1);
    ts
}

fn check_file(name: &str, d: &[u8], min_segments: &[u64]) {
    let b = Binlog::open(d).unwrap();
    let ts = times(&b);
    for (i, &t) in ts.iter().enumerate() {
        let seq = resume_point_seq(&b, t);
        // the production entry (sequential probe of the first 256 KiB, then chains)
        assert_eq!(resume_point(&b, t, 16, 2, &NoPager), seq, "{name}: t={t}");
        // the parallel hop on a third of the times, and on both out-of-range ones
        let segs = if i % 3 == 0 || i + 2 >= ts.len() {
            min_segments
        } else {
            &[]
        };
        for &ms in segs {
            for (chains, threads) in [(1, 1), (3, 2), (8, 1), (64, 2)] {
                let par = resume_point_with(&b, t, chains, threads, ms, &NoPager);
                assert_eq!(
                    par, seq,
                    "{name}: t={t} chains={chains} threads={threads} seg={ms}"
                );
            }
        }
        // planning from the resume point decides exactly as planning from offset 4
        for w in [
            Window {
                start_time: Some(t),
                ..Window::default()
            },
            Window {
                start_time: Some(t),
                stop_time: Some(t + 1),
                ..Window::default()
            },
            Window {
                start_time: Some(t + 2),
                stop_time: Some(t),
                ..Window::default()
            },
        ] {
            let tmin = w.start_time.unwrap().min(w.stop_time.unwrap_or(i64::MAX));
            let from = resume_point_seq(&b, tmin);
            assert_eq!(
                kept(&b, &w, from),
                kept(&b, &w, None),
                "{name}: window {w:?} resumed at {from:?}"
            );
        }
    }
}

#[test]
fn parallel_equals_sequential_on_fixtures() {
    for (name, d) in fixtures() {
        check_file(&name, &d, &[64, 1000, 1 << 20]);
    }
}

// ---- synthetic files ------------------------------------------------------------------

/// A MariaDB binlog built from the pitr fixture's FDE: `groups` standalone groups (Gtid +
/// Query), timestamps rising one per `per_sec` groups with a lock waiter now and then.
/// `log_pos`: true = offset + size (binlog), false = unrelated values (relay log).
/// `fake`: Query payloads filled with fake headers whose log_pos matches their offset.
fn synthetic(groups: u32, per_sec: u32, log_pos: bool, fake: bool, seed: u64) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/binlog/mariadb-pitr/row-crc32/binlogs/mysql-bin.000001");
    let orig = std::fs::read(p).unwrap();
    let b = Binlog::open(&orig).unwrap();
    assert!(b.format.has_crc());
    let mut out = orig[..b.after_fde() as usize].to_vec();
    out[crate::binlog::reader::IN_USE_BYTE] &= !(FLAG_IN_USE as u8);
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let base: u32 = 1_700_000_000;
    for g in 0..groups {
        let mut ts = base + g / per_sec;
        if next() % 17 == 0 {
            ts = ts.saturating_sub(2); // a lock waiter
        }
        // Gtid: seq u64, domain u32, flags2 (standalone)
        let mut body = Vec::new();
        body.extend_from_slice(&u64::from(g + 1).to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(crate::binlog::gtid::FL_STANDALONE);
        body.extend_from_slice(&[0; 6]);
        push_event(&mut out, ts, types::MARIADB_GTID, &body, log_pos, &mut next);
        // Query: thread_id, exec_time, db_len 0, error 0, status_len 0, db "\0", text
        let mut q = vec![0u8; 13];
        q.push(0);
        let n = (next() % 3000) as usize + if next() % 5 == 0 { 9000 } else { 0 };
        let start = out.len() + COMMON_HEADER_LEN + q.len();
        let mut text = format!("INSERT INTO t VALUES ({g})").into_bytes();
        while text.len() < n {
            if fake {
                // a fake Xid event with a log_pos that matches where it sits in the file
                let at = (start + text.len()) as u32;
                let mut h = Vec::new();
                h.extend_from_slice(&ts.to_le_bytes());
                h.push(types::XID);
                h.extend_from_slice(&1u32.to_le_bytes());
                h.extend_from_slice(&31u32.to_le_bytes());
                h.extend_from_slice(&(at + 31).to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes());
                h.resize(31, b'x');
                text.extend_from_slice(&h);
            } else {
                text.push(b'a' + (next() % 26) as u8);
            }
        }
        q.extend_from_slice(&text);
        push_event(&mut out, ts, types::QUERY, &q, log_pos, &mut next);
    }
    out
}

fn push_event(
    out: &mut Vec<u8>,
    ts: u32,
    code: u8,
    body: &[u8],
    log_pos: bool,
    next: &mut impl FnMut() -> u64,
) {
    let at = out.len();
    let size = (COMMON_HEADER_LEN + body.len() + 4) as u32;
    let lp = if log_pos {
        at as u32 + size
    } else {
        (next() % 100_000) as u32
    };
    out.extend_from_slice(&ts.to_le_bytes());
    out.push(code);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&lp.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[at..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[test]
fn synthetic_files_are_walked_as_expected() {
    let d = synthetic(300, 10, true, false, 1);
    let b = Binlog::open(&d).unwrap();
    // every event well framed, every CRC right, 600 events after the FDE
    assert!(b.events(true).all(|e| e.is_ok()));
    assert_eq!(b.events(true).count(), 1 + 600);
    // candidates validate in a binlog, never in a relay-log style file
    let w = walker(&b, i64::MAX);
    assert!(w.resync(d.len() as u64 / 2, &known_table()).is_some());
    let r = synthetic(300, 10, false, false, 1);
    let br = Binlog::open(&r).unwrap();
    let wr = walker(&br, i64::MAX);
    assert!(wr.resync(r.len() as u64 / 2, &known_table()).is_none());
    // the fake headers fool the resync scan (so the fallback is exercised)
    let f = synthetic(300, 10, true, true, 1);
    let bf = Binlog::open(&f).unwrap();
    let wf = walker(&bf, i64::MAX);
    let real: std::collections::HashSet<u64> =
        bf.events(false).map(|e| e.unwrap().offset).collect();
    let fooled = (1..20)
        .filter_map(|k| wf.resync(f.len() as u64 / 20 * k, &known_table()))
        .filter(|o| !real.contains(o))
        .count();
    assert!(fooled > 0);
}

#[test]
fn parallel_equals_sequential_on_synthetic_files() {
    for seed in 1..4 {
        for (log_pos, fake) in [(true, false), (false, false), (true, true)] {
            let d = synthetic(400, 20, log_pos, fake, seed);
            check_file(
                &format!("synthetic seed {seed} log_pos {log_pos} fake {fake}"),
                &d,
                &[512, 4096, 60_000],
            );
            // concatenated: a second binlog (own FDE, log_pos from its own start) appended
            let mut cat = d.clone();
            cat.extend_from_slice(&synthetic(200, 20, log_pos, fake, seed + 10));
            check_file(
                &format!("concatenated seed {seed} log_pos {log_pos} fake {fake}"),
                &cat,
                &[512, 4096],
            );
        }
    }
}

#[test]
fn pages_are_given_back_in_aligned_blocks_before_the_resume_point() {
    // ~30 MB: long enough for several 2 MiB blocks per segment
    let d = synthetic(150_000, 1000, true, false, 11);
    assert!(d.len() > 24 << 20, "{}", d.len());
    let b = Binlog::open(&d).unwrap();
    struct Rec(std::sync::Mutex<Vec<(u64, u64)>>);
    impl Pager for Rec {
        fn populate(&self, o: u64, n: u64) {
            panic!("the hop asked to populate {o}+{n}: plain faults cost less");
        }
        fn release(&self, o: u64, n: u64) {
            self.0.lock().unwrap().push((o, n));
        }
    }
    let first = i64::from(u32le(&d, b.after_fde() as usize));
    for (chains, t) in [(16, first + 100), (64, first + 120), (8, first + 140)] {
        let rec = Rec(std::sync::Mutex::new(Vec::new()));
        let r = resume_point_with(&b, t, chains, 2, 1 << 20, &rec);
        assert_eq!(r, resume_point_seq(&b, t));
        let mut rel = rec.0.into_inner().unwrap();
        assert!(
            !rel.is_empty(),
            "{chains} chains, t {t}: nothing given back"
        );
        rel.sort();
        // whole aligned blocks (no PMD split), never twice; and with nearly ordered times
        // nothing the plan reads next (the resume point onwards) is given back — not a
        // guarantee (a chain past the window may walk on through older timestamps), only
        // a refault if it happens
        let keep = r.unwrap_or(d.len() as u64);
        let mut end = 0;
        for &(o, n) in &rel {
            let whole = n % HUGE_PAGE == 0 || o + n >= d.len() as u64;
            assert!(n > 0 && o % HUGE_PAGE == 0 && whole, "{o}+{n}");
            assert!(o >= end, "{o}+{n} overlaps a release ending at {end}");
            assert!(o + n <= keep, "{o}+{n} passes the resume point {keep}");
            end = o + n;
        }
    }
}
