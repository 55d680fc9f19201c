use super::*;
use std::io::{Cursor, ErrorKind};

/// A reader that hands out at most `step` bytes per read and fails with EINTR every
/// other call, as a slow pipe interrupted by signals does.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
    calls: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(2) {
            return Err(io::Error::from(ErrorKind::Interrupted));
        }
        let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn reader_fills_records_over_short_reads_and_eintr() {
    let data = pattern(100_000);
    let mut r = RecordReader::new(
        Trickle {
            data: data.clone(),
            pos: 0,
            step: 1000,
            calls: 0,
        },
        32768,
    )
    .unwrap();
    let mut lens = Vec::new();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        lens.push(rec.len());
        out.extend_from_slice(rec);
    }
    assert_eq!(lens, vec![32768, 32768, 32768, 100_000 - 3 * 32768]);
    assert_eq!(out, data);
    assert_eq!(
        r.stats(),
        Stats {
            bytes: 100_000,
            full_records: 3,
            partial_records: 1
        }
    );
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn reader_exact_multiple_has_no_empty_record() {
    let mut r = RecordReader::new(Cursor::new(pattern(65536)), 32768).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().len(), 32768);
    assert_eq!(r.next_record().unwrap().unwrap().len(), 32768);
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn tape_mode_reads_once_per_record() {
    let mut r = RecordReader::new(
        Trickle {
            data: pattern(5000),
            pos: 0,
            step: 1000,
            calls: 0,
        },
        32768,
    )
    .unwrap()
    .tape(true);
    assert_eq!(r.next_record().unwrap().unwrap().len(), 1000);
    assert_eq!(r.next_record().unwrap().unwrap().len(), 1000);
}

/// Records as seen by a tape: every write() call separately.
#[derive(Default)]
struct Calls(Vec<usize>, Vec<u8>);
impl Write for Calls {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.push(b.len());
        self.1.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_keeps_the_true_length_of_the_last_record() {
    let data = pattern(70_000);
    let mut w = RecordWriter::new(Calls::default(), 32768).unwrap();
    for chunk in data.chunks(777) {
        w.write_bytes(chunk).unwrap();
    }
    let st = w.finish().unwrap();
    assert_eq!(
        st,
        Stats {
            bytes: 70_000,
            full_records: 2,
            partial_records: 1
        }
    );
    let c = w.into_inner();
    assert_eq!(c.0, vec![32768, 32768, 70_000 - 65536]);
    assert_eq!(c.1, data);
}

#[test]
fn writer_pads_when_asked() {
    let mut w = RecordWriter::new(Calls::default(), 512)
        .unwrap()
        .pad_last(true);
    w.write_bytes(&[1; 700]).unwrap();
    w.finish().unwrap();
    let c = w.into_inner();
    assert_eq!(c.0, vec![512, 512]);
    assert_eq!(&c.1[700..], &[0; 324][..]);
}

#[test]
fn writer_large_writes_and_copy_always_give_the_same_records() {
    let data = pattern(200_000);
    for copy in [false, true] {
        let mut w = RecordWriter::new(Calls::default(), 4096)
            .unwrap()
            .copy_always(copy);
        w.write_bytes(&data[..10]).unwrap();
        w.write_bytes(&data[10..]).unwrap();
        w.finish().unwrap();
        let c = w.into_inner();
        assert!(c.0[..c.0.len() - 1].iter().all(|&n| n == 4096));
        assert_eq!(c.1, data);
    }
}

#[test]
fn direct_file_falls_back_for_the_unaligned_tail() {
    // O_DIRECT needs a filesystem that supports it (not tmpfs); use the target directory.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("direct-test-{}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let f = match open_direct(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("SKIP: O_DIRECT unsupported here: {e}");
            let _ = std::fs::remove_file(&path);
            return;
        }
    };
    let data = pattern(3 * 4096 + 100);
    let mut w = RecordWriter::new(f, 4096).unwrap().copy_always(true);
    w.write_bytes(&data).unwrap();
    w.finish().unwrap();
    assert!(
        !w.get_ref().is_direct(),
        "the short tail must leave O_DIRECT"
    );
    drop(w);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    std::fs::remove_file(&path).unwrap();
}
