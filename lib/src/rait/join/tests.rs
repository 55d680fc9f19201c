//! Round trips through split and join over temporary files: every length class, layouts,
//! lost volumes, trailers, checksums and damage.

use std::fs::File;
use std::io::{Cursor, Write};

use super::*;
use crate::rait::split::split;

struct Tmp(std::path::PathBuf);
impl Tmp {
    fn new() -> Tmp {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "lv-rait-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn vol(&self, i: usize) -> std::path::PathBuf {
        self.0.join(format!("v{i}"))
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn amanda_header() -> Vec<u8> {
    let mut h =
        b"AMANDA: SPLIT_FILE 20260101120000 h /d  part 1/-1  lev 0 comp N program /bin/tar\n\x0c\n"
            .to_vec();
    h.resize(AMANDA_BLOCK, 0);
    h
}

fn do_split(t: &Tmp, input: &[u8], geo: &Geometry, seekable: bool) {
    let mut outs: Vec<VolumeOut> = (0..geo.volumes)
        .map(|i| VolumeOut::new(File::create(t.vol(i)).unwrap(), seekable, false))
        .collect();
    split(&mut Cursor::new(input), &mut outs, geo, 0xfeed).unwrap();
}

fn sources(t: &Tmp, n: usize, lost: &[usize]) -> Vec<Source> {
    (0..n)
        .map(|i| {
            if lost.contains(&i) {
                Source::Missing
            } else {
                Source::Read(Box::new(File::open(t.vol(i)).unwrap()))
            }
        })
        .collect()
}

fn do_join(
    t: &Tmp,
    n: usize,
    lost: &[usize],
    opts: &JoinOptions,
) -> Result<(Vec<u8>, Summary, Vec<Event>), JoinError> {
    let set = Set::open(sources(t, n, lost), opts)?;
    let mut out = Vec::new();
    let mut ev = Vec::new();
    let s = set.run(Some(&mut out), &mut [], &mut |e| ev.push(e.clone()))?;
    Ok((out, s, ev))
}

#[test]
fn round_trips_every_length_layout_and_loss() {
    let b = 512;
    for (n, m) in [(2, 1), (3, 1), (5, 1), (4, 2), (5, 2), (6, 3)] {
        let g = Geometry::new(n, m, b, 512, false).unwrap();
        let row = g.row_bytes();
        for len in [
            0,
            1,
            b - 1,
            b,
            b + 1,
            row - 1,
            row,
            row + 1,
            row * 3 + 7,
            row * 34,
        ] {
            for seekable in [true, false] {
                let t = Tmp::new();
                let input = data(len, (len * 7 + n) as u64);
                do_split(&t, &input, &g, seekable);
                let (out, s, _) = do_join(
                    &t,
                    n,
                    &[],
                    &JoinOptions {
                        block: Some(b),
                        header_size: Some(512),
                        trust_data: false,
                    },
                )
                .unwrap();
                assert_eq!(out, input, "n={n} m={m} len={len} seekable={seekable}");
                assert_eq!(s.payload, len as u64);
                // every single loss, and every pair with m >= 2
                for a in 0..n {
                    for bb in a..n {
                        let lost: Vec<usize> = if a == bb { vec![a] } else { vec![a, bb] };
                        if lost.len() > m {
                            continue;
                        }
                        let opts = JoinOptions {
                            block: None,
                            header_size: Some(512),
                            trust_data: false,
                        };
                        let (out, _, ev) = do_join(&t, n, &lost, &opts).unwrap();
                        assert_eq!(out, input, "n={n} m={m} len={len} lost={lost:?}");
                        assert_eq!(ev.len(), lost.len());
                    }
                }
            }
        }
    }
}

#[test]
fn amanda_header_is_copied_and_payload_striped() {
    let t = Tmp::new();
    let g = Geometry::new(3, 1, AMANDA_BLOCK, AMANDA_BLOCK, false).unwrap();
    let mut input = amanda_header();
    input.extend(data(100_000, 3));
    do_split(&t, &input, &g, true);
    for i in 0..3 {
        let v = std::fs::read(t.vol(i)).unwrap();
        assert_eq!(v.len(), AMANDA_BLOCK + 2 * AMANDA_BLOCK);
        let fb = FirstBlock::parse(&v[..AMANDA_BLOCK]).unwrap();
        assert_eq!(fb.amanda.as_deref(), Some(&input[..AMANDA_BLOCK]));
    }
    let v0 = std::fs::read(t.vol(0)).unwrap();
    let v1 = std::fs::read(t.vol(1)).unwrap();
    let v2 = std::fs::read(t.vol(2)).unwrap();
    let payload = &input[AMANDA_BLOCK..];
    assert_eq!(
        &v0[AMANDA_BLOCK..2 * AMANDA_BLOCK],
        &payload[..AMANDA_BLOCK]
    );
    assert_eq!(
        &v1[AMANDA_BLOCK..2 * AMANDA_BLOCK],
        &payload[AMANDA_BLOCK..2 * AMANDA_BLOCK]
    );
    for j in 0..AMANDA_BLOCK {
        assert_eq!(
            v2[AMANDA_BLOCK + j],
            v0[AMANDA_BLOCK + j] ^ v1[AMANDA_BLOCK + j]
        );
    }
    for lost in [vec![], vec![0], vec![1], vec![2]] {
        let (out, _, _) = do_join(&t, 3, &lost, &JoinOptions::default()).unwrap();
        assert_eq!(out, input);
    }
}

#[test]
fn checksums_locate_and_repair_and_plain_parity_refuses() {
    for sums in [true, false] {
        let t = Tmp::new();
        let g = Geometry::new(3, 1, 1024, 1024, sums).unwrap();
        let input = data(50_000, 9);
        do_split(&t, &input, &g, true);
        let mut v = std::fs::read(t.vol(1)).unwrap();
        let off = g.record_offset(5) as usize + 17;
        v[off] ^= 0xff;
        std::fs::write(t.vol(1), &v).unwrap();
        let opts = JoinOptions {
            block: None,
            header_size: Some(1024),
            trust_data: false,
        };
        let r = do_join(&t, 3, &[], &opts);
        if sums {
            let (out, s, ev) = r.unwrap();
            assert_eq!(out, input);
            assert_eq!(s.damaged_records, 1);
            assert_eq!(
                ev,
                vec![Event::BadChecksum {
                    volume: 1,
                    record: 5,
                    offset: g.record_offset(5)
                }]
            );
        } else {
            assert!(
                matches!(r, Err(JoinError::ParityMismatch { record: 5, .. })),
                "{r:?}"
            );
            let (out, _, _) = do_join(
                &t,
                3,
                &[],
                &JoinOptions {
                    trust_data: true,
                    ..opts
                },
            )
            .unwrap();
            assert_ne!(out, input);
            assert_eq!(out.len(), input.len());
        }
    }
}

#[test]
fn reed_solomon_locates_one_bad_record_without_checksums() {
    let t = Tmp::new();
    let g = Geometry::new(5, 2, 512, 512, false).unwrap();
    let input = data(20_000, 5);
    do_split(&t, &input, &g, false);
    let mut v = std::fs::read(t.vol(3)).unwrap();
    v[g.record_offset(2) as usize] ^= 1;
    std::fs::write(t.vol(3), &v).unwrap();
    let (out, s, ev) = do_join(
        &t,
        5,
        &[],
        &JoinOptions {
            block: None,
            header_size: Some(512),
            trust_data: false,
        },
    )
    .unwrap();
    assert_eq!(out, input);
    assert_eq!(s.damaged_records, 1);
    assert_eq!(
        ev,
        vec![Event::Located {
            volume: 3,
            record: 2,
            offset: g.record_offset(2)
        }]
    );
}

#[test]
fn truncated_volume_is_rebuilt_from_where_it_stops() {
    for seekable in [true, false] {
        let t = Tmp::new();
        let g = Geometry::new(3, 1, 512, 512, false).unwrap();
        let input = data(60_000, 11);
        do_split(&t, &input, &g, seekable);
        let v = std::fs::read(t.vol(0)).unwrap();
        // cut in the middle of record 20
        std::fs::write(t.vol(0), &v[..g.record_offset(20) as usize + 100]).unwrap();
        let (out, _, ev) = do_join(
            &t,
            3,
            &[],
            &JoinOptions {
                block: None,
                header_size: Some(512),
                trust_data: false,
            },
        )
        .unwrap();
        assert_eq!(out, input, "seekable={seekable}");
        assert!(
            matches!(
                ev[..],
                [Event::Ended {
                    volume: 0,
                    record: 20,
                    ..
                }]
            ),
            "{ev:?}"
        );
    }
}

#[test]
fn mixed_sets_order_and_counts_are_refused() {
    let a = Tmp::new();
    let b = Tmp::new();
    let g = Geometry::new(3, 1, 512, 512, false).unwrap();
    do_split(&a, &data(5000, 1), &g, true);
    let mut outs: Vec<VolumeOut> = (0..3)
        .map(|i| VolumeOut::new(File::create(b.vol(i)).unwrap(), true, false))
        .collect();
    split(&mut Cursor::new(data(5000, 1)), &mut outs, &g, 0xbeef).unwrap();
    let opts = JoinOptions {
        block: None,
        header_size: Some(512),
        trust_data: false,
    };
    let src = vec![
        Source::Read(Box::new(File::open(a.vol(0)).unwrap())),
        Source::Read(Box::new(File::open(b.vol(1)).unwrap())),
        Source::Read(Box::new(File::open(a.vol(2)).unwrap())),
    ];
    assert!(matches!(
        Set::open(src, &opts),
        Err(JoinError::OtherSet { volume: 1, .. })
    ));
    let src = vec![
        Source::Read(Box::new(File::open(a.vol(1)).unwrap())),
        Source::Read(Box::new(File::open(a.vol(0)).unwrap())),
        Source::Missing,
    ];
    assert!(matches!(
        Set::open(src, &opts),
        Err(JoinError::Position {
            volume: 0,
            child: 1
        })
    ));
    assert!(matches!(
        Set::open(sources(&a, 2, &[]), &opts),
        Err(JoinError::Count {
            given: 2,
            volumes: 3
        })
    ));
    assert!(matches!(
        Set::open(sources(&a, 3, &[0, 1]), &opts),
        Err(JoinError::TooManyLost { .. })
    ));
    let o = JoinOptions {
        block: Some(1024),
        ..opts
    };
    assert!(matches!(
        Set::open(sources(&a, 3, &[]), &o),
        Err(JoinError::BlockSize {
            given: 1024,
            stored: 512
        })
    ));
    let mut f = File::create(a.vol(1)).unwrap();
    f.write_all(&[0u8; 100]).unwrap();
    assert!(matches!(
        Set::open(sources(&a, 3, &[]), &opts),
        Err(JoinError::Truncated {
            volume: 1,
            got: 100,
            ..
        })
    ));
}

#[test]
fn rebuild_regenerates_a_lost_volume_byte_for_byte() {
    for (seekable, sums) in [(true, false), (false, true)] {
        let t = Tmp::new();
        let g = Geometry::new(4, 2, 512, 512, sums).unwrap();
        do_split(&t, &data(33_333, 2), &g, seekable);
        let orig = std::fs::read(t.vol(1)).unwrap();
        std::fs::remove_file(t.vol(1)).unwrap();
        let set = Set::open(
            sources(&t, 4, &[1]),
            &JoinOptions {
                block: None,
                header_size: Some(512),
                trust_data: false,
            },
        )
        .unwrap();
        let p = t.0.join("new1");
        let mut rb = vec![(
            1usize,
            VolumeOut::new(File::create(&p).unwrap(), seekable, false),
        )];
        set.run(None, &mut rb, &mut |_| {}).unwrap();
        drop(rb);
        assert_eq!(std::fs::read(&p).unwrap(), orig, "seekable={seekable}");
    }
}

/// A volume whose reads fail with EIO after `ok` bytes, as a dying drive does.
struct Failing {
    inner: File,
    ok: usize,
}
impl std::io::Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        let k = buf.len().min(self.ok);
        let n = self.inner.read(&mut buf[..k])?;
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn read_error_mid_volume_rebuilds_that_very_record() {
    let t = Tmp::new();
    let g = Geometry::new(3, 1, 512, 512, false).unwrap();
    let input = data(40_000, 21);
    do_split(&t, &input, &g, true);
    // fails in the middle of record 7 of volume 1
    let fail_at = g.record_offset(7) as usize + 200;
    let src = vec![
        Source::Read(Box::new(File::open(t.vol(0)).unwrap())),
        Source::Read(Box::new(Failing {
            inner: File::open(t.vol(1)).unwrap(),
            ok: fail_at,
        })),
        Source::Read(Box::new(File::open(t.vol(2)).unwrap())),
    ];
    let set = Set::open(
        src,
        &JoinOptions {
            block: None,
            header_size: Some(512),
            trust_data: false,
        },
    )
    .unwrap();
    let mut out = Vec::new();
    let mut ev = Vec::new();
    set.run(Some(&mut out), &mut [], &mut |e| ev.push(e.clone()))
        .unwrap();
    assert_eq!(out, input);
    match &ev[..] {
        [Event::Ended {
            volume: 1,
            record: 7,
            cause,
            ..
        }] => assert!(cause.contains("read error"), "{cause}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn property_random_lengths_and_layouts() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for _ in 0..40 {
        let n = 2 + next(6) as usize;
        let m = 1 + next((n - 1) as u64) as usize;
        let b = 512 * (1 + next(3) as usize);
        let sums = next(2) == 1;
        let seekable = next(2) == 1;
        let g = Geometry::new(n, m, b, 512 * (1 + next(2) as usize), sums).unwrap();
        let len = next((g.row_bytes() * 40) as u64) as usize;
        let t = Tmp::new();
        let input = data(len, len as u64 + 1);
        do_split(&t, &input, &g, seekable);
        let lost: Vec<usize> = (0..next(m as u64 + 1))
            .map(|_| next(n as u64) as usize)
            .collect();
        let mut lost_sorted = lost.clone();
        lost_sorted.sort();
        lost_sorted.dedup();
        let opts = JoinOptions {
            block: None,
            header_size: None,
            trust_data: false,
        };
        let (out, s, _) = do_join(&t, n, &lost_sorted, &opts).unwrap();
        assert_eq!(
            out, input,
            "{g:?} len={len} lost={lost_sorted:?} seekable={seekable}"
        );
        assert_eq!(s.payload, len as u64);
    }
}

#[test]
fn restore_line_block_size_is_read() {
    let mut h = b"AMANDA: FILE 20260101 h /d  lev 0 comp N program /bin/tar\nTo restore, position tape at start of file and run:\n\tdd if=<tape> bs=256k skip=1 | /bin/tar -xpGf - ... \n\x0c\n".to_vec();
    h.resize(32768, 0);
    assert_eq!(restore_line_block_size(&h), Some(262144));
    let no_bs = String::from_utf8(h.clone())
        .unwrap()
        .replace("bs=256k ", "");
    assert_eq!(restore_line_block_size(no_bs.as_bytes()), None);
    assert_eq!(
        restore_line_block_size(b"AMANDA: FILE\n\tdd if=<tape> bs=k skip=1 |\n"),
        None
    );
    assert_eq!(
        restore_line_block_size(b"AMANDA: FILE\n\tdd if=<tape> bs=99999999k skip=1 |\n"),
        None
    );
}

/// A seekable volume whose bytes in `bad` cannot be read (EIO), as a disk with bad sectors:
/// reads stop short before the range and fail inside it.
struct BadSectors {
    inner: File,
    bad: std::ops::Range<u64>,
}
impl std::io::Read for BadSectors {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Seek;
        let pos = self.inner.stream_position()?;
        if self.bad.contains(&pos) {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        let k = if pos < self.bad.start {
            buf.len().min((self.bad.start - pos) as usize)
        } else {
            buf.len()
        };
        self.inner.read(&mut buf[..k])
    }
}
impl std::io::Seek for BadSectors {
    fn seek(&mut self, p: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(p)
    }
}

/// Volumes 0..3 of a 2+1 set of 512-byte records; `bad[i]`: records of volume i (from,
/// to inclusive) that cannot be read.
fn run_bad_sectors(
    input_len: usize,
    bad: [Option<(u64, u64)>; 3],
    verify: bool,
) -> (Result<Summary, JoinError>, Vec<u8>, Vec<Event>, Vec<u8>) {
    run_bad_sectors_of(input_len, bad, verify, true)
}

/// `seekable_split`: false = volumes written as to tapes (length in a trailer, read with
/// two records held back per batch, so a bad record can be read in the batch before its own).
fn run_bad_sectors_of(
    input_len: usize,
    bad: [Option<(u64, u64)>; 3],
    verify: bool,
    seekable_split: bool,
) -> (Result<Summary, JoinError>, Vec<u8>, Vec<Event>, Vec<u8>) {
    let t = Tmp::new();
    let g = Geometry::new(3, 1, 512, 512, false).unwrap();
    let input = data(input_len, 33);
    do_split(&t, &input, &g, seekable_split);
    let src = (0..3)
        .map(|i| {
            let inner = File::open(t.vol(i)).unwrap();
            match bad[i] {
                // record r of a volume is at 512 (first block) + r * 512
                Some((a, b)) => Source::Seekable(Box::new(BadSectors {
                    inner,
                    bad: 512 + a * 512 + 100..512 + b * 512 + 200,
                })),
                None => Source::Seekable(Box::new(inner)),
            }
        })
        .collect();
    let opts = JoinOptions {
        block: None,
        header_size: Some(512),
        trust_data: false,
    };
    let set = Set::open(src, &opts).unwrap();
    let mut out = Vec::new();
    let mut ev = Vec::new();
    let r = if verify {
        set.run(None, &mut [], &mut |e| ev.push(e.clone()))
    } else {
        set.run(Some(&mut out), &mut [], &mut |e| ev.push(e.clone()))
    };
    (r, out, ev, input)
}

fn unreadable(ev: &[Event]) -> Vec<(usize, u64)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Unreadable {
                volume,
                record,
                cause,
                ..
            } => {
                assert!(cause.contains("Input/output error"), "{cause}");
                Some((*volume, *record))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn unreadable_records_of_seekable_volumes_are_rebuilt_and_reading_goes_on() {
    // bad blocks on two volumes in different rows: each rebuilt from the others (a volume
    // given up at its first error would leave row 150 with two volumes lost)
    let (r, out, ev, input) =
        run_bad_sectors(200_000, [Some((150, 150)), Some((7, 9)), None], false);
    let s = r.unwrap();
    assert!(out == input);
    assert_eq!(unreadable(&ev), [(1, 7), (1, 8), (1, 9), (0, 150)]);
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert_eq!((s.damaged_records, s.rebuilt_records), (4, 4));
    assert!(s.lost_volumes.is_empty());
    // verify counts them (exit 3 in the tool: repairable)
    let (r, _, ev, _) = run_bad_sectors(200_000, [Some((150, 150)), Some((7, 9)), None], true);
    assert_eq!(r.unwrap().damaged_records, 4);
    assert_eq!(unreadable(&ev).len(), 4);
}

#[test]
fn the_same_row_unreadable_on_two_volumes_is_too_many() {
    let (r, _, ev, _) = run_bad_sectors(100_000, [Some((30, 30)), Some((30, 31)), None], false);
    match r {
        Err(JoinError::TooManyLost { record: 30, .. }) => {}
        other => panic!("{other:?} {ev:?}"),
    }
}

#[test]
fn a_volume_with_too_many_unreadable_records_is_given_up_from_there() {
    let last = 10 + MAX_UNREADABLE as u64 + 20;
    let (r, out, ev, input) = run_bad_sectors(300_000, [None, None, Some((10, last))], false);
    r.unwrap();
    assert!(
        out == input,
        "the stream is still exact: volumes 0 and 1 hold the data"
    );
    let skipped = unreadable(&ev);
    assert_eq!(skipped.len(), MAX_UNREADABLE);
    assert_eq!(skipped[0], (2, 10));
    match ev.last() {
        Some(Event::Ended {
            volume: 2,
            record,
            cause,
            ..
        }) => {
            assert_eq!(*record, 10 + MAX_UNREADABLE as u64);
            assert!(cause.contains("giving the volume up"), "{cause}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_records_in_the_held_back_records_of_a_trailer_set() {
    // batches of BATCH rows, two more read ahead: records BATCH and BATCH + 1 are read with
    // the first batch and used in the second
    let b = BATCH as u64;
    for bad in [
        (b, b),
        (b + 1, b + 1),
        (b - 1, b + 1),
        (2 * b + 1, 2 * b + 3),
    ] {
        let (r, out, ev, input) =
            run_bad_sectors_of(150_000, [None, Some(bad), None], false, false);
        r.unwrap_or_else(|e| panic!("{bad:?}: {e} {ev:?}"));
        assert!(out == input, "{bad:?}");
        let want: Vec<(usize, u64)> = (bad.0..=bad.1).map(|k| (1, k)).collect();
        assert_eq!(unreadable(&ev), want, "{bad:?}");
    }
}
