//! Fuzz raitstripe's readers: the metadata line, the trailer, the first block, and a whole
//! join over arbitrary volume bytes. Properties: no panic, no allocation beyond the validated
//! geometry, a parsed line renders back to itself, and a join that succeeds on a set whose
//! length is recorded writes exactly header + length bytes — also when the volumes are
//! seekable and one of them has a range that fails with EIO (records skipped and rebuilt).
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom};

use lampvault::rait::join::{JoinOptions, Set, Source};
use lampvault::rait::{FirstBlock, Geometry, HeaderKind, Length, Meta, Trailer};
use libfuzzer_sys::fuzz_target;

const HS: usize = 512;

/// A seekable volume whose bytes in `bad` fail with EIO (a bad sector): exercises join's
/// skipping of unreadable records.
struct BadSectors {
    inner: Cursor<Vec<u8>>,
    bad: std::ops::Range<u64>,
}
impl Read for BadSectors {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.inner.position();
        if self.bad.contains(&pos) {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        let k = if pos < self.bad.start { buf.len().min((self.bad.start - pos) as usize) } else { buf.len() };
        self.inner.read(&mut buf[..k])
    }
}
impl Seek for BadSectors {
    fn seek(&mut self, p: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(p)
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. the parsers on raw bytes
    if let Ok(m) = Meta::parse(data) {
        assert_eq!(Meta::parse(m.render().as_bytes()), Ok(m));
    }
    let _ = Trailer::parse(data);
    if data.len() >= HS {
        let _ = FirstBlock::parse(&data[..HS]);
    }

    // 2. a join over volumes cut from the input
    if data.len() < 4 {
        return;
    }
    let n = 2 + (data[0] % 4) as usize;
    let flags = data[1];
    let parity = 1 + (data[2] as usize % (n - 1));
    let rest = &data[4..];
    let sums = flags & 2 != 0;
    let geo = match Geometry::new(n, parity, 512, HS, sums) {
        Ok(g) => g,
        Err(_) => return,
    };
    let chunk = rest.len() / n;
    let mut vols: Vec<Vec<u8>> = Vec::new();
    let mut known = None;
    for i in 0..n {
        let body = &rest[i * chunk..(i + 1) * chunk];
        let mut v = Vec::new();
        if flags & 1 != 0 {
            // a valid first block, so the fuzzer reaches the record logic
            let len = if flags & 4 != 0 {
                let l = u64::from(data[3]) * 97;
                known = Some(l);
                Length::Known(l)
            } else {
                Length::Trailer
            };
            let m = Meta { set: 42, child: i, geometry: geo, header: HeaderKind::None, len };
            v.extend(FirstBlock::build(None, &m));
        }
        v.extend_from_slice(body);
        vols.push(v);
    }
    let missing = (flags >> 4) as usize;
    let sources: Vec<Source> = vols
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if i == missing {
                Source::Missing
            } else if flags & 0x40 == 0 {
                Source::Read(Box::new(Cursor::new(v)))
            } else if flags & 0x20 != 0 && i == (data[3] as usize) % n {
                // one volume with a bad range somewhere after its first block
                let a = HS as u64 + u64::from(data[3]) * 37;
                let bad = a..a + 1 + u64::from(data[2]) * 29;
                Source::Seekable(Box::new(BadSectors { inner: Cursor::new(v), bad }))
            } else {
                Source::Seekable(Box::new(Cursor::new(v)))
            }
        })
        .collect();
    let opts = JoinOptions { block: None, header_size: if flags & 0x80 != 0 { None } else { Some(HS) }, trust_data: flags & 8 != 0 };
    let Ok(set) = Set::open(sources, &opts) else { return };
    let mut out = Vec::new();
    if let Ok(sum) = set.run(Some(&mut out), &mut [], &mut |_| {}) {
        if let Some(l) = known {
            assert_eq!(out.len() as u64, l);
            assert_eq!(sum.payload, l);
        }
    }
});
