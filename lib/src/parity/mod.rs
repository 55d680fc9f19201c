//! Parity over the records of a stripe: XOR for one parity volume (Amanda's RAIT), Reed-Solomon
//! (the `reed-solomon-simd` crate, GF(2^16), SIMD) for two or more.
//!
//! Vocabulary: a stripe *row* is `data` data shards and `parity` parity shards of `shard`
//! bytes each; shard `i` of a row lives on volume `i`, the parity volumes being the last
//! ones (spec `amanda-media.md` §3.3). With one parity shard the parity is the XOR of the data
//! shards, byte for byte what Amanda's RAIT device writes; with one data shard that is a copy
//! (the two-volume mirror). Reed-Solomon's first recovery shard is *not* the XOR, which is why
//! `--parity 1` always uses XOR.
//!
//! Invariants: a [`Codec`] allocates its scratch buffers once, in [`Codec::new`]; encoding,
//! checking and rebuilding a row allocate nothing for XOR (the Reed-Solomon crate reuses its
//! own work buffers through `reset`). Lost Reed-Solomon data shards are rebuilt by
//! [`rsmatrix`] (the crate's code as a matrix, solved once per loss pattern) whenever the span
//! is whole 64-byte chunks, by the crate's decoder otherwise. Rows are addressed as "shard `i` is
//! `bufs[i][off..off + shard]`", so callers keep one buffer per volume and no per-row vector.

mod rsmatrix;
mod xor;

pub use xor::{xor2, xor_all, xor_into};

use std::fmt;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// What a parity operation could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParityError {
    /// This many data and parity shards cannot be coded.
    Unsupported { data: usize, parity: usize },
    /// Shards must be non-empty and of even length (a Reed-Solomon requirement, kept for XOR).
    ShardSize(usize),
    /// More shards are missing than there are parity shards.
    TooManyLost { lost: usize, parity: usize },
    /// The Reed-Solomon crate refused (should not happen once `new` succeeded).
    Codec(String),
}

impl fmt::Display for ParityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParityError::Unsupported { data, parity } => {
                write!(
                    f,
                    "unsupported geometry: {data} data + {parity} parity volumes"
                )
            }
            ParityError::ShardSize(n) => {
                write!(f, "invalid block size {n}: must be even and non-zero")
            }
            ParityError::TooManyLost { lost, parity } => {
                write!(f, "{lost} volumes lost but only {parity} parity volume(s)")
            }
            ParityError::Codec(e) => write!(f, "reed-solomon: {e}"),
        }
    }
}

impl std::error::Error for ParityError {}

fn rs_err(e: reed_solomon_simd::Error) -> ParityError {
    ParityError::Codec(e.to_string())
}

/// Spans at least this long per half are decoded on two threads.
const PARALLEL_MIN: usize = 256 * 1024;
/// The same for the matrix decoder (cheaper per byte, so a thread pays off later).
const MATRIX_PARALLEL_MIN: usize = 256 * 1024;

/// Rebuild the absent data shards of `shards` (all of one length) with `dec`.
fn decode_into(
    dec: &mut ReedSolomonDecoder,
    d: usize,
    m: usize,
    shards: &mut [&mut [u8]],
    present: &[bool],
) -> Result<(), ParityError> {
    let len = shards[0].len();
    dec.reset(d, m, len).map_err(rs_err)?;
    for (i, sh) in shards.iter().enumerate().take(d + m) {
        if !present[i] {
            continue;
        }
        if i < d {
            dec.add_original_shard(i, &**sh).map_err(rs_err)?;
        } else {
            dec.add_recovery_shard(i - d, &**sh).map_err(rs_err)?;
        }
    }
    let res = dec.decode().map_err(rs_err)?;
    for (i, restored) in res.restored_original_iter() {
        shards[i].copy_from_slice(restored);
    }
    Ok(())
}

/// `bufs[e][off..off + len]` = XOR of the same span of every other buffer. The lost buffer is
/// moved out for the call (no copy) so that it can be written while the others are read.
fn xor_in_place_of(bufs: &mut [Vec<u8>], e: usize, off: usize, len: usize) {
    let mut dst = std::mem::take(&mut bufs[e]);
    xor_all(
        &mut dst[off..off + len],
        bufs.iter()
            .enumerate()
            .filter(|&(i, _)| i != e)
            .map(|(_, b)| &b[off..off + len]),
    );
    bufs[e] = dst;
}

/// The encoder/decoder for one geometry, with its scratch space.
pub struct Codec {
    data: usize,
    parity: usize,
    shard: usize,
    rs: Option<(ReedSolomonEncoder, ReedSolomonDecoder)>,
    /// A second decoder, for the other half of a large span decoded on another core.
    dec2: Option<ReedSolomonDecoder>,
    /// `parity * shard` bytes: freshly computed parity.
    scratch: Vec<u8>,
    /// `shard` bytes: a shard saved while trying to locate a bad one.
    saved: Vec<u8>,
    /// Reed-Solomon generator matrix, read from the crate on the first degraded rebuild
    /// (`Some(None)`: not usable, the crate's decoder is used).
    gen: Option<Option<Vec<Vec<u16>>>>,
    /// Decode plan of the last loss pattern seen.
    plan: Option<rsmatrix::Plan>,
}

impl Codec {
    /// A codec for `data` data and `parity` parity shards of `shard` bytes.
    pub fn new(data: usize, parity: usize, shard: usize) -> Result<Codec, ParityError> {
        if shard == 0 || !shard.is_multiple_of(2) {
            return Err(ParityError::ShardSize(shard));
        }
        if data == 0 || parity == 0 || data + parity > 256 {
            return Err(ParityError::Unsupported { data, parity });
        }
        let rs = if parity >= 2 {
            if !ReedSolomonEncoder::supports(data, parity) {
                return Err(ParityError::Unsupported { data, parity });
            }
            let enc = ReedSolomonEncoder::new(data, parity, shard).map_err(rs_err)?;
            let dec = ReedSolomonDecoder::new(data, parity, shard).map_err(rs_err)?;
            Some((enc, dec))
        } else {
            None
        };
        Ok(Codec {
            data,
            parity,
            shard,
            rs,
            dec2: None,
            scratch: vec![0; parity * shard],
            saved: vec![0; shard],
            gen: None,
            plan: None,
        })
    }

    pub fn data_shards(&self) -> usize {
        self.data
    }

    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    pub fn shard_len(&self) -> usize {
        self.shard
    }

    /// Compute the parity shards of a contiguous row (`data * shard` bytes) into `out`
    /// (`parity * shard` bytes, shard after shard).
    pub fn encode_row(&mut self, row: &[u8], out: &mut [u8]) -> Result<(), ParityError> {
        let s = self.shard;
        assert_eq!(row.len(), self.data * s, "encode_row: row length");
        assert_eq!(out.len(), self.parity * s, "encode_row: parity length");
        match &mut self.rs {
            None => xor_all(out, row.chunks_exact(s)),
            Some((enc, _)) => {
                enc.reset(self.data, self.parity, s).map_err(rs_err)?;
                for d in row.chunks_exact(s) {
                    enc.add_original_shard(d).map_err(rs_err)?;
                }
                let res = enc.encode().map_err(rs_err)?;
                for (o, r) in out.chunks_exact_mut(s).zip(res.recovery_iter()) {
                    o.copy_from_slice(r);
                }
            }
        }
        Ok(())
    }

    /// True when rows of this codec may be handled several at a time: `span` bytes at `off`
    /// of every buffer hold `span / shard` consecutive rows' shards. Always true for XOR;
    /// Reed-Solomon works on independent 64-byte chunks, so it needs a shard size that is a
    /// multiple of 64 (tested in `span_tests`).
    pub fn can_span(&self) -> bool {
        self.rs.is_none() || self.shard.is_multiple_of(64)
    }

    fn check_span(&self, len: usize) {
        assert!(
            len > 0 && len.is_multiple_of(self.shard) && (len == self.shard || self.can_span()),
            "parity span {len}"
        );
        debug_assert!(len.is_multiple_of(2));
    }

    /// Parity of the data shards `bufs[0..data]` at `off..off + len`, into `self.scratch`
    /// (grown once to the largest span used, then reused).
    fn parity_of(&mut self, bufs: &[Vec<u8>], off: usize, len: usize) -> Result<(), ParityError> {
        let (d, m) = (self.data, self.parity);
        if self.scratch.len() < m * len {
            self.scratch.resize(m * len, 0);
        }
        match &mut self.rs {
            None => xor_all(
                &mut self.scratch[..len],
                bufs[..d].iter().map(|b| &b[off..off + len]),
            ),
            Some((enc, _)) => {
                enc.reset(d, m, len).map_err(rs_err)?;
                for b in &bufs[..d] {
                    enc.add_original_shard(&b[off..off + len]).map_err(rs_err)?;
                }
                let res = enc.encode().map_err(rs_err)?;
                for (o, r) in self.scratch[..m * len]
                    .chunks_exact_mut(len)
                    .zip(res.recovery_iter())
                {
                    o.copy_from_slice(r);
                }
            }
        }
        Ok(())
    }

    /// Every data shard must be present. True when each present parity shard equals the
    /// parity of the data over `off..off + len` (true as well when no parity shard is
    /// present: nothing to check). `len` is one shard, or several rows when [`can_span`].
    ///
    /// [`can_span`]: Codec::can_span
    pub fn row_consistent(
        &mut self,
        bufs: &[Vec<u8>],
        off: usize,
        len: usize,
        present: &[bool],
    ) -> Result<bool, ParityError> {
        self.check_span(len);
        let d = self.data;
        debug_assert!(present[..d].iter().all(|&p| p));
        if !present[d..d + self.parity].iter().any(|&p| p) {
            return Ok(true);
        }
        self.parity_of(bufs, off, len)?;
        for p in 0..self.parity {
            if present[d + p] && bufs[d + p][off..off + len] != self.scratch[p * len..(p + 1) * len]
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Fill every shard `i` with `present[i] == false` (data and parity) over `off..off + len`
    /// from the others. One call for many rows costs about what one row does with
    /// Reed-Solomon, whose decoder has a large fixed cost per call.
    pub fn rebuild(
        &mut self,
        bufs: &mut [Vec<u8>],
        off: usize,
        len: usize,
        present: &[bool],
    ) -> Result<(), ParityError> {
        self.check_span(len);
        let (d, m) = (self.data, self.parity);
        let n = d + m;
        let lost = present[..n].iter().filter(|&&p| !p).count();
        if lost == 0 {
            return Ok(());
        }
        if lost > m {
            return Err(ParityError::TooManyLost { lost, parity: m });
        }
        if self.rs.is_none() {
            // One parity shard: the lost shard (data or parity) is the XOR of all the others,
            // written straight into its place in one pass (`xor2` for 2+1), no scratch copy.
            let e = present[..n].iter().position(|&p| !p).unwrap();
            xor_in_place_of(bufs, e, off, len);
            return Ok(());
        }
        if self.scratch.len() < m * len {
            self.scratch.resize(m * len, 0);
        }
        let data_lost = present[..d].iter().any(|&p| !p);
        if data_lost && len.is_multiple_of(64) {
            let gen = self.gen.get_or_insert_with(|| rsmatrix::generator(d, m));
            if let Some(g) = gen {
                if self
                    .plan
                    .as_ref()
                    .is_none_or(|p| p.present[..] != present[..n])
                {
                    self.plan = rsmatrix::plan(g, d, &present[..n]);
                }
            }
        }
        let plan = match &self.plan {
            Some(p) if data_lost && len.is_multiple_of(64) && p.present[..] == present[..n] => {
                Some(p)
            }
            _ => None,
        };
        if let Some(plan) = plan {
            // Matrix decode (see `rsmatrix`): a large span is split over two cores at a
            // 64-byte boundary.
            let half = (len / 2) / 64 * 64;
            let mut lo: Vec<&mut [u8]> = Vec::with_capacity(n);
            if half >= MATRIX_PARALLEL_MIN
                && std::thread::available_parallelism().map_or(1, |p| p.get()) > 1
            {
                let mut hi: Vec<&mut [u8]> = Vec::with_capacity(n);
                for b in bufs.iter_mut() {
                    let (a, z) = b[off..off + len].split_at_mut(half);
                    lo.push(a);
                    hi.push(z);
                }
                std::thread::scope(|sc| {
                    sc.spawn(|| rsmatrix::apply(plan, &mut hi));
                    rsmatrix::apply(plan, &mut lo);
                });
            } else {
                for b in bufs.iter_mut() {
                    lo.push(&mut b[off..off + len]);
                }
                rsmatrix::apply(plan, &mut lo);
            }
        } else if data_lost {
            match &mut self.rs {
                None => unreachable!("XOR handled above"),
                Some((_, dec)) => {
                    let s = self.shard;
                    let rows = len / s;
                    let half = (rows / 2) * s;
                    let mut lo: Vec<&mut [u8]> = Vec::with_capacity(n);
                    let mut hi: Vec<&mut [u8]> = Vec::with_capacity(n);
                    if half >= PARALLEL_MIN
                        && std::thread::available_parallelism().map_or(1, |p| p.get()) > 1
                    {
                        // Reed-Solomon decoding is the slowest thing here (~2 GB/s): a large
                        // span is decoded in two halves on two cores.
                        if self.dec2.is_none() {
                            self.dec2 = Some(ReedSolomonDecoder::new(d, m, half).map_err(rs_err)?);
                        }
                        let dec2 = self.dec2.as_mut().unwrap();
                        for b in bufs.iter_mut() {
                            let (a, z) = b[off..off + len].split_at_mut(half);
                            lo.push(a);
                            hi.push(z);
                        }
                        std::thread::scope(|sc| {
                            let other = sc.spawn(|| decode_into(dec2, d, m, &mut hi, present));
                            let mine = decode_into(dec, d, m, &mut lo, present);
                            let theirs = other.join().unwrap_or_else(|_| {
                                Err(ParityError::Codec("decoder thread panicked".into()))
                            });
                            mine.and(theirs)
                        })?;
                    } else {
                        for b in bufs.iter_mut() {
                            lo.push(&mut b[off..off + len]);
                        }
                        decode_into(dec, d, m, &mut lo, present)?;
                    }
                }
            }
        }
        if present[d..n].iter().any(|&p| !p) {
            self.parity_of(bufs, off, len)?;
            for p in 0..m {
                if !present[d + p] {
                    bufs[d + p][off..off + len]
                        .copy_from_slice(&self.scratch[p * len..(p + 1) * len]);
                }
            }
        }
        Ok(())
    }

    /// A complete row whose parity does not match: find the one shard whose replacement makes
    /// it consistent, and repair it in place. Needs two parity shards or more (with one, every
    /// shard is an equally good suspect). Returns the shard index, or `None` (row unchanged)
    /// when no single shard explains the mismatch.
    pub fn locate_and_repair(
        &mut self,
        bufs: &mut [Vec<u8>],
        off: usize,
        present: &mut [bool],
    ) -> Result<Option<usize>, ParityError> {
        let (d, m, s) = (self.data, self.parity, self.shard);
        if m < 2 {
            return Ok(None);
        }
        let mut found = None;
        for k in 0..d + m {
            self.saved.copy_from_slice(&bufs[k][off..off + s]);
            present[k] = false;
            let rebuilt = self.rebuild(bufs, off, s, present);
            present[k] = true;
            rebuilt?;
            if self.row_consistent(bufs, off, s, present)? {
                found = Some(k);
                break;
            }
            bufs[k][off..off + s].copy_from_slice(&self.saved);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, s: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                (0..s)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            })
            .collect()
    }

    /// Encode a row, then lose every subset of at most `m` shards and rebuild it.
    fn round_trip(d: usize, m: usize, s: usize) {
        let mut c = Codec::new(d, m, s).unwrap();
        let data = rows(d, s, (d * 31 + m * 7 + s) as u64 + 1);
        let row: Vec<u8> = data.concat();
        let mut par = vec![0u8; m * s];
        c.encode_row(&row, &mut par).unwrap();
        let mut good: Vec<Vec<u8>> = data.clone();
        good.extend(par.chunks(s).map(|p| p.to_vec()));
        if m == 1 {
            let mut x = vec![0u8; s];
            for dd in &data {
                xor_into(&mut x, dd);
            }
            assert_eq!(good[d], x, "parity 1 must be plain XOR (Amanda)");
        }
        let n = d + m;
        let all = vec![true; n];
        assert!(c.row_consistent(&good, 0, s, &all).unwrap());
        for mask in 0u32..(1 << n) {
            let lost = mask.count_ones() as usize;
            let present: Vec<bool> = (0..n).map(|i| mask & (1 << i) == 0).collect();
            let mut bufs = good.clone();
            for i in 0..n {
                if !present[i] {
                    bufs[i].fill(0x5A);
                }
            }
            let r = c.rebuild(&mut bufs, 0, s, &present);
            if lost <= m {
                r.unwrap();
                assert_eq!(bufs, good, "d={d} m={m} mask={mask:b}");
            } else {
                assert_eq!(r, Err(ParityError::TooManyLost { lost, parity: m }));
            }
        }
        // one corrupted shard: located with m >= 2
        for k in 0..n {
            let mut bufs = good.clone();
            bufs[k][s / 2] ^= 0x40;
            let mut present = vec![true; n];
            assert!(!c.row_consistent(&bufs, 0, s, &present).unwrap());
            let got = c.locate_and_repair(&mut bufs, 0, &mut present).unwrap();
            if m >= 2 {
                assert_eq!(got, Some(k));
                assert_eq!(bufs, good);
            } else {
                assert_eq!(got, None);
            }
        }
    }

    #[test]
    fn every_loss_pattern_rebuilds() {
        for (d, m) in [
            (1, 1),
            (2, 1),
            (4, 1),
            (1, 2),
            (2, 2),
            (3, 2),
            (4, 2),
            (2, 3),
            (3, 3),
        ] {
            for s in [2, 64, 1000] {
                round_trip(d, m, s);
            }
        }
    }

    /// XOR rebuilds a multi-row span at an offset straight into the lost buffer: the span
    /// gets the XOR of the others, bytes outside it stay as they were.
    #[test]
    fn xor_span_rebuild_in_place_at_offset() {
        let (d, s, rows, off) = (2, 64, 5, 3 * 64);
        let mut c = Codec::new(d, 1, s).unwrap();
        let mut good = rows_of(d, off + s * rows + s);
        let mut par = vec![0u8; good[0].len()];
        xor_all(&mut par, good.iter().map(|b| &b[..]));
        good.push(par);
        for e in 0..=d {
            let mut bufs = good.clone();
            bufs[e].fill(0x5A);
            let mut present = vec![true; d + 1];
            present[e] = false;
            c.rebuild(&mut bufs, off, s * rows, &present).unwrap();
            assert_eq!(
                bufs[e][off..off + s * rows],
                good[e][off..off + s * rows],
                "e={e}"
            );
            assert!(bufs[e][..off].iter().all(|&b| b == 0x5A), "e={e}");
            assert!(
                bufs[e][off + s * rows..].iter().all(|&b| b == 0x5A),
                "e={e}"
            );
            for i in (0..=d).filter(|&i| i != e) {
                assert_eq!(bufs[i], good[i]);
            }
        }
    }

    /// A span large enough to be decoded on two threads gives the same bytes as row by row.
    #[test]
    fn large_span_rebuild_matches() {
        let (d, m, s, rows) = (4, 2, 32768, 17);
        let mut c = Codec::new(d, m, s).unwrap();
        let mut good: Vec<Vec<u8>> = rows_of(d, s * rows);
        good.extend((0..m).map(|_| vec![0u8; s * rows]));
        for r in 0..rows {
            let row: Vec<u8> = (0..d)
                .flat_map(|i| good[i][r * s..(r + 1) * s].to_vec())
                .collect();
            let mut par = vec![0u8; m * s];
            c.encode_row(&row, &mut par).unwrap();
            for p in 0..m {
                good[d + p][r * s..(r + 1) * s].copy_from_slice(&par[p * s..(p + 1) * s]);
            }
        }
        let present = [false, true, false, true, true, true];
        let mut bufs = good.clone();
        bufs[0].fill(1);
        bufs[2].fill(2);
        assert!(2 * PARALLEL_MIN <= s * rows);
        c.rebuild(&mut bufs, 0, s * rows, &present).unwrap();
        assert!(bufs == good);
        assert!(c.row_consistent(&bufs, 0, s * rows, &[true; 6]).unwrap());
    }

    fn rows_of(n: usize, len: usize) -> Vec<Vec<u8>> {
        rows(n, len, 99)
    }

    #[test]
    fn bad_geometry() {
        assert_eq!(Codec::new(2, 1, 0).err(), Some(ParityError::ShardSize(0)));
        assert_eq!(Codec::new(2, 1, 3).err(), Some(ParityError::ShardSize(3)));
        assert!(matches!(
            Codec::new(0, 1, 64),
            Err(ParityError::Unsupported { .. })
        ));
        assert!(matches!(
            Codec::new(2, 0, 64),
            Err(ParityError::Unsupported { .. })
        ));
    }
}

#[cfg(test)]
mod span_tests {
    use reed_solomon_simd::ReedSolomonEncoder;

    /// Rows coded one by one equal the rows concatenated and coded at once, when the shard
    /// size is a multiple of 64 (the crate works on independent 64-byte chunks).
    #[test]
    fn reed_solomon_is_position_wise() {
        let (d, m, s, rows) = (4, 2, 1024, 3);
        let data: Vec<Vec<u8>> = (0..d)
            .map(|i| {
                (0..s * rows)
                    .map(|k| (k * 31 + i * 7 + k / 13) as u8)
                    .collect()
            })
            .collect();
        let mut enc = ReedSolomonEncoder::new(d, m, s * rows).unwrap();
        for x in &data {
            enc.add_original_shard(x).unwrap();
        }
        let whole: Vec<Vec<u8>> = enc
            .encode()
            .unwrap()
            .recovery_iter()
            .map(|r| r.to_vec())
            .collect();
        for r in 0..rows {
            let mut enc = ReedSolomonEncoder::new(d, m, s).unwrap();
            for x in &data {
                enc.add_original_shard(&x[r * s..(r + 1) * s]).unwrap();
            }
            let res = enc.encode().unwrap();
            for (p, w) in res.recovery_iter().zip(&whole) {
                assert_eq!(p, &w[r * s..(r + 1) * s]);
            }
        }
    }
}
