//! LZ4 frames (the format `lz4 -d` reads), written in parallel and read strictly.
//!
//! Format: lz4's `doc/lz4_Frame_format.md` v1.6.x — magic `04 22 4D 18`, FLG, BD,
//! optional content size (8) and dictionary id (4), header checksum (second byte of
//! XXH32(descriptor)), blocks (`u32` size, high bit = stored uncompressed, optional XXH32
//! block checksum), end mark `0`, optional XXH32 content checksum.
//!
//! Writer invariants: one frame, independent 1 MiB blocks, content size recorded, so blocks
//! can be compressed on every core and still form a frame any stock `lz4` decompresses.
//! Reader: accepts any single valid frame (linked blocks, checksums, skippable frames are
//! not accepted — a walarchive file holds exactly one frame), refuses trailing bytes, and
//! never produces more than the caller's limit. Errors name the offset.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use lzzzz::{lz4, lz4_hc};

const MAGIC: u32 = 0x184D_2204;
/// Block size our writer uses (BD code 6).
pub const BLOCK_SIZE: usize = 1 << 20;

/// XXH32 (Yann Collet's xxHash, 32-bit), as the LZ4 frame format uses it.
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2654435761;
    const P2: u32 = 2246822519;
    const P3: u32 = 3266489917;
    const P4: u32 = 668265263;
    const P5: u32 = 374761393;
    let rd = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round = |acc: u32, v: u32| {
        acc.wrapping_add(v.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    };
    let mut p = data;
    let mut h: u32;
    if p.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while p.len() >= 16 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, rd(&p[i * 4..]));
            }
            p = &p[16..];
        }
        h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
    } else {
        h = seed.wrapping_add(P5);
    }
    h = h.wrapping_add(data.len() as u32);
    while p.len() >= 4 {
        h = h
            .wrapping_add(rd(p).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        p = &p[4..];
    }
    for &b in p {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

/// An LZ4 frame that cannot be decoded; `offset` is in the compressed input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub offset: usize,
    pub cause: String,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad LZ4 frame at offset {}: {}", self.offset, self.cause)
    }
}

impl std::error::Error for FrameError {}

fn ferr(offset: usize, cause: impl Into<String>) -> FrameError {
    FrameError {
        offset,
        cause: cause.into(),
    }
}

/// The frame header our writer emits for `content_len` bytes.
pub fn frame_header(content_len: u64) -> Vec<u8> {
    let mut h = MAGIC.to_le_bytes().to_vec();
    // FLG: version 01, independent blocks, content size present, no checksums, no dict id.
    let desc_start = h.len();
    h.push(0b0110_1000);
    // BD: max block size code 6 = 1 MiB.
    h.push(6 << 4);
    h.extend_from_slice(&content_len.to_le_bytes());
    let hc = (xxh32(&h[desc_start..], 0) >> 8) as u8;
    h.push(hc);
    h
}

/// The end mark closing our frames (no content checksum).
pub const END_MARK: [u8; 4] = [0, 0, 0, 0];

/// Compress one block into frame form (size word + data), storing it raw when LZ4 does not
/// shrink it. `level` 1 (and 0) = LZ4 fast; a negative level -N = LZ4 fast with
/// acceleration N (what `lz4 --fast=N` and LZ4F's negative levels mean: faster, larger);
/// 2..=12 = LZ4 HC at that level (below 3 HC means 3).
pub fn encode_block(src: &[u8], level: i32) -> Vec<u8> {
    let mut out = Vec::new();
    encode_block_into(src, level, &mut out);
    out
}

/// [`encode_block`] into `out` (cleared first), so that a caller can reuse its buffers.
pub fn encode_block_into(src: &[u8], level: i32, out: &mut Vec<u8>) {
    debug_assert!(src.len() <= BLOCK_SIZE);
    out.clear();
    out.reserve(4 + lz4::max_compressed_size(src.len()));
    out.extend_from_slice(&[0; 4]);
    let n = if level <= 1 {
        // Appends to `out`: no zero-filling of the worst-case buffer first.
        lz4::compress_to_vec(src, out, level.saturating_neg().max(1))
    } else {
        out.resize(4 + lz4::max_compressed_size(src.len()), 0);
        lz4_hc::compress(
            src,
            &mut out[4..],
            level.clamp(lz4_hc::CLEVEL_MIN, lz4_hc::CLEVEL_MAX),
        )
    }
    .unwrap_or(usize::MAX);
    if n >= src.len() {
        out.truncate(4);
        out[..4].copy_from_slice(&(src.len() as u32 | 0x8000_0000).to_le_bytes());
        out.extend_from_slice(src);
    } else {
        out.truncate(4 + n);
        out[..4].copy_from_slice(&(n as u32).to_le_bytes());
    }
}

/// Compress `src` into one LZ4 frame with `threads` workers, handing the frame's bytes to
/// `sink` in order as soon as each block is ready, so compression overlaps with writing.
/// Returns the frame's total length, or the sink's first error.
pub fn compress_parallel<E>(
    src: &[u8],
    level: i32,
    threads: usize,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let header = frame_header(src.len() as u64);
    sink(&header)?;
    let mut total = header.len() as u64;
    let nblocks = src.len().div_ceil(BLOCK_SIZE);
    if threads <= 1 || nblocks <= 1 {
        // No worker threads for one block or one core: nothing to overlap.
        for blk in src.chunks(BLOCK_SIZE) {
            let b = encode_block(blk, level);
            sink(&b)?;
            total += b.len() as u64;
        }
        sink(&END_MARK)?;
        return Ok(total + END_MARK.len() as u64);
    }
    let next = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads * 2);
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= nblocks {
                    break;
                }
                let blk = &src[i * BLOCK_SIZE..((i + 1) * BLOCK_SIZE).min(src.len())];
                if tx.send((i, encode_block(blk, level))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: Vec<Option<Vec<u8>>> = vec![None; nblocks];
        let mut want = 0;
        for (i, blk) in rx.iter() {
            pending[i] = Some(blk);
            while want < nblocks {
                let Some(b) = pending[want].take() else { break };
                if let Err(e) = sink(&b) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                total += b.len() as u64;
                want += 1;
            }
        }
        Ok(())
    });
    result?;
    sink(&END_MARK)?;
    Ok(total + END_MARK.len() as u64)
}

/// Compress `src` into one frame in memory (single thread).
pub fn compress_to_vec(src: &[u8], level: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = compress_parallel::<()>(src, level, 1, |b| {
        out.extend_from_slice(b);
        Ok(())
    });
    out
}

/// True when `data` starts with the LZ4 frame magic.
pub fn is_frame(data: &[u8]) -> bool {
    data.len() >= 4 && u32::from_le_bytes([data[0], data[1], data[2], data[3]]) == MAGIC
}

/// A frame's descriptor, as [`parse_header`] read it.
struct Header {
    indep: bool,
    block_cks: bool,
    content_cks: bool,
    max_block: usize,
    content_size: Option<u64>,
    /// Where the first block starts.
    len: usize,
}

/// Check and read the frame header of `data` (magic, descriptor, header checksum, content
/// size against `limit`).
fn parse_header(data: &[u8], limit: usize) -> Result<Header, FrameError> {
    if data.len() < 7 {
        return Err(ferr(
            0,
            format!("{} bytes is too short for a frame header", data.len()),
        ));
    }
    if !is_frame(data) {
        return Err(ferr(0, "no LZ4 frame magic"));
    }
    let flg = data[4];
    let bd = data[5];
    if flg >> 6 != 0b01 {
        return Err(ferr(4, format!("unsupported frame version {}", flg >> 6)));
    }
    if flg & 0b10 != 0 || bd & 0x8F != 0 {
        return Err(ferr(4, "reserved bits set in the frame descriptor"));
    }
    if flg & 0x01 != 0 {
        return Err(ferr(4, "frames with a dictionary id are not supported"));
    }
    let max_block = match bd >> 4 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        c => return Err(ferr(5, format!("invalid block size code {c}"))),
    };
    let mut p = 6;
    let mut content_size = None;
    if flg & 0x08 != 0 {
        let Some(b) = data.get(p..p + 8) else {
            return Err(ferr(p, "truncated content size"));
        };
        content_size = Some(u64::from_le_bytes(b.try_into().expect("8 bytes")));
        p += 8;
    }
    let Some(&hc) = data.get(p) else {
        return Err(ferr(p, "truncated frame header"));
    };
    if (xxh32(&data[4..p], 0) >> 8) as u8 != hc {
        return Err(ferr(p, "header checksum mismatch"));
    }
    p += 1;
    if let Some(cs) = content_size {
        if cs > limit as u64 {
            return Err(ferr(
                6,
                format!("content size {cs} exceeds the limit of {limit} bytes"),
            ));
        }
    }
    Ok(Header {
        indep: flg & 0x20 != 0,
        block_cks: flg & 0x10 != 0,
        content_cks: flg & 0x04 != 0,
        max_block,
        content_size,
        len: p,
    })
}

/// Decode exactly one LZ4 frame making up all of `data`, producing at most `limit` bytes.
pub fn decode_frame(data: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
    let Header {
        indep,
        block_cks,
        content_cks,
        max_block,
        content_size,
        len: mut p,
    } = parse_header(data, limit)?;
    let mut out: Vec<u8> = Vec::with_capacity(content_size.unwrap_or(0) as usize);
    let mut scratch = vec![0u8; max_block];
    loop {
        let Some(w) = data.get(p..p + 4) else {
            return Err(ferr(p, "truncated block size (no end mark)"));
        };
        let word = u32::from_le_bytes(w.try_into().expect("4 bytes"));
        let at = p;
        p += 4;
        if word == 0 {
            break;
        }
        let raw = word & 0x8000_0000 != 0;
        let len = (word & 0x7FFF_FFFF) as usize;
        if len > max_block {
            return Err(ferr(
                at,
                format!("block of {len} bytes exceeds the frame's maximum {max_block}"),
            ));
        }
        let Some(blk) = data.get(p..p + len) else {
            return Err(ferr(at, format!("truncated block of {len} bytes")));
        };
        p += len;
        if block_cks {
            let Some(c) = data.get(p..p + 4) else {
                return Err(ferr(p, "truncated block checksum"));
            };
            if u32::from_le_bytes(c.try_into().expect("4 bytes")) != xxh32(blk, 0) {
                return Err(ferr(at, "block checksum mismatch"));
            }
            p += 4;
        }
        let produced: &[u8] = if raw {
            blk
        } else {
            let n = if indep || out.is_empty() {
                lz4::decompress(blk, &mut scratch)
            } else {
                let d = &out[out.len().saturating_sub(64 << 10)..];
                lz4::decompress_with_dict(blk, &mut scratch, d)
            }
            .map_err(|_| ferr(at, "corrupt LZ4 block"))?;
            &scratch[..n]
        };
        if out.len() + produced.len() > limit {
            return Err(ferr(
                at,
                format!("decompressed data exceeds the limit of {limit} bytes"),
            ));
        }
        out.extend_from_slice(produced);
    }
    if content_cks {
        let Some(c) = data.get(p..p + 4) else {
            return Err(ferr(p, "truncated content checksum"));
        };
        if u32::from_le_bytes(c.try_into().expect("4 bytes")) != xxh32(&out, 0) {
            return Err(ferr(p, "content checksum mismatch"));
        }
        p += 4;
    }
    if let Some(cs) = content_size {
        if cs != out.len() as u64 {
            return Err(ferr(
                6,
                format!("frame says {cs} bytes of content but holds {}", out.len()),
            ));
        }
    }
    if p != data.len() {
        return Err(ferr(
            p,
            format!("{} bytes of trailing data after the frame", data.len() - p),
        ));
    }
    Ok(out)
}

/// What [`decode_frame_parallel`] fails with: the frame, or the sink.
#[derive(Debug)]
pub enum DecodeError<E> {
    Frame(FrameError),
    Sink(E),
}

/// A decoded block: a slice of the frame (stored uncompressed) or a buffer of the pool.
enum Decoded<'a> {
    Raw(&'a [u8]),
    Owned(Vec<u8>),
}

/// [`decode_frame`], handing the content to `sink` in order, block by block, as it is
/// decoded, with the blocks of a frame of independent blocks decoded by `threads` workers
/// at once (frames with linked blocks or a content checksum, or `threads` ≤ 1: one
/// [`decode_frame`], then the content in [`BLOCK_SIZE`] pieces). Accepts exactly the frames
/// `decode_frame` accepts, and fails with its error: on any problem the frame is decoded
/// again by `decode_frame` for it. `sink` never gets more than `limit` bytes, but may have
/// been given a prefix of the content when an error is returned.
pub fn decode_frame_parallel<E>(
    data: &[u8],
    limit: usize,
    threads: usize,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, DecodeError<E>> {
    let h = parse_header(data, limit).map_err(DecodeError::Frame)?;
    if !h.indep || h.content_cks || threads <= 1 {
        let out = decode_frame(data, limit).map_err(DecodeError::Frame)?;
        for piece in out.chunks(BLOCK_SIZE) {
            sink(piece).map_err(DecodeError::Sink)?;
        }
        return Ok(out.len() as u64);
    }
    let canonical = || {
        DecodeError::Frame(match decode_frame(data, limit) {
            Err(e) => e,
            Ok(_) => ferr(0, "frame decoded differently on a second reading"),
        })
    };
    // Locate the blocks (and check their checksums) without decoding them.
    let mut blocks: Vec<(bool, &[u8])> = Vec::new();
    let mut p = h.len;
    loop {
        let Some(w) = data.get(p..p + 4) else {
            return Err(canonical());
        };
        let word = u32::from_le_bytes(w.try_into().expect("4 bytes"));
        p += 4;
        if word == 0 {
            break;
        }
        let len = (word & 0x7FFF_FFFF) as usize;
        let Some(blk) = data.get(p..p + len).filter(|_| len <= h.max_block) else {
            return Err(canonical());
        };
        p += len;
        if h.block_cks {
            match data.get(p..p + 4) {
                Some(c) if u32::from_le_bytes(c.try_into().expect("4 bytes")) == xxh32(blk, 0) => {}
                _ => return Err(canonical()),
            }
            p += 4;
        }
        blocks.push((word & 0x8000_0000 != 0, blk));
    }
    if p != data.len() {
        return Err(canonical());
    }
    let n = blocks.len();
    let next = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let pool = std::sync::Mutex::new(Vec::<Vec<u8>>::new());
    let mut total = 0u64;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(usize, Option<Decoded>)>(threads * 2);
        for _ in 0..threads.min(n) {
            let tx = tx.clone();
            let (next, stop, pool, blocks) = (&next, &stop, &pool, &blocks);
            let max_block = h.max_block;
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (raw, blk) = blocks[i];
                let d = if raw {
                    Some(Decoded::Raw(blk))
                } else {
                    let mut buf = pool
                        .lock()
                        .ok()
                        .and_then(|mut v| v.pop())
                        .unwrap_or_default();
                    buf.resize(max_block, 0);
                    match lz4::decompress(blk, &mut buf) {
                        Ok(k) => {
                            buf.truncate(k);
                            Some(Decoded::Owned(buf))
                        }
                        Err(_) => None,
                    }
                };
                if tx.send((i, d)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: Vec<Option<Option<Decoded>>> = (0..n).map(|_| None).collect();
        let mut want = 0;
        for (i, d) in rx.iter() {
            pending[i] = Some(d);
            while want < n {
                let Some(d) = pending[want].take() else { break };
                let fail = |e| {
                    stop.store(true, Ordering::Relaxed);
                    Err(e)
                };
                let Some(d) = d else { return fail(canonical()) };
                let bytes: &[u8] = match &d {
                    Decoded::Raw(b) => b,
                    Decoded::Owned(v) => v,
                };
                total += bytes.len() as u64;
                if total > limit as u64 {
                    return fail(canonical());
                }
                if let Err(e) = sink(bytes) {
                    return fail(DecodeError::Sink(e));
                }
                if let (Decoded::Owned(v), Ok(mut p)) = (d, pool.lock()) {
                    p.push(v);
                }
                want += 1;
            }
        }
        Ok(())
    })?;
    if h.content_size.is_some_and(|cs| cs != total) {
        return Err(canonical());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh32_reference_values() {
        // Published xxHash test vectors.
        assert_eq!(xxh32(b"", 0), 0x02CC5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D153FF);
    }

    #[test]
    fn round_trip_and_limits() {
        let mut src = Vec::new();
        for i in 0..(3 * BLOCK_SIZE + 12345) {
            src.push(((i * 7) % 251) as u8 ^ if i % 1000 < 10 { (i / 3) as u8 } else { 0 });
        }
        for level in [1, -4, 4] {
            let f = compress_to_vec(&src, level);
            assert!(f.len() < src.len());
            assert_eq!(decode_frame(&f, src.len()).unwrap(), src);
            assert!(decode_frame(&f, src.len() - 1).is_err());
            let e = decode_frame(&f[..f.len() - 1], src.len()).unwrap_err();
            assert!(e.offset < f.len(), "{e}");
            let mut t = f.clone();
            t.push(0);
            assert!(decode_frame(&t, src.len()).is_err());
        }
        let mut parts = Vec::new();
        compress_parallel::<()>(&src, 1, 2, |b| {
            parts.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(parts, compress_to_vec(&src, 1));
        let empty = compress_to_vec(b"", 1);
        assert_eq!(decode_frame(&empty, 0).unwrap(), b"");
        assert!(decode_frame(b"\x04\x22\x4d\x18\x68\x60", 10).is_err());
    }

    /// `decode_frame_parallel` collected, with `threads` workers.
    fn par(f: &[u8], limit: usize, threads: usize) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        let r = decode_frame_parallel::<()>(f, limit, threads, |b| {
            assert!(
                out.len() + b.len() <= limit,
                "sink given more than the limit"
            );
            out.extend_from_slice(b);
            Ok(())
        });
        match r {
            Ok(n) => {
                assert_eq!(n, out.len() as u64);
                Ok(out)
            }
            Err(DecodeError::Frame(e)) => Err(e),
            Err(DecodeError::Sink(())) => unreachable!(),
        }
    }

    /// Frames of our writer and of liblz4's frame API (linked blocks, checksums, raw
    /// blocks), intact and damaged: the parallel decoder says exactly what `decode_frame`
    /// says, bytes or error.
    #[test]
    fn parallel_decode_matches_decode_frame() {
        use lzzzz::lz4f;
        let mut src = Vec::new();
        let mut x = 0x9E37_79B9u32;
        for i in 0..(2 * BLOCK_SIZE + 77_777) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // compressible runs, then a stretch of noise that LZ4 stores raw
            src.push(if (BLOCK_SIZE..BLOCK_SIZE + 300_000).contains(&i) {
                x as u8
            } else {
                (i % 97) as u8
            });
        }
        let mut frames = vec![
            compress_to_vec(&src, 1),
            compress_to_vec(&src[..1000], 1),
            compress_to_vec(b"", 1),
        ];
        for (size, mode, bcks, ccks) in [
            (
                lz4f::BlockSize::Max64KB,
                lz4f::BlockMode::Independent,
                lz4f::BlockChecksum::Enabled,
                lz4f::ContentChecksum::Disabled,
            ),
            (
                lz4f::BlockSize::Max256KB,
                lz4f::BlockMode::Linked,
                lz4f::BlockChecksum::Disabled,
                lz4f::ContentChecksum::Disabled,
            ),
            (
                lz4f::BlockSize::Max4MB,
                lz4f::BlockMode::Independent,
                lz4f::BlockChecksum::Disabled,
                lz4f::ContentChecksum::Enabled,
            ),
            (
                lz4f::BlockSize::Max1MB,
                lz4f::BlockMode::Independent,
                lz4f::BlockChecksum::Disabled,
                lz4f::ContentChecksum::Disabled,
            ),
        ] {
            let prefs = lz4f::PreferencesBuilder::new()
                .block_size(size)
                .block_mode(mode)
                .block_checksum(bcks)
                .content_checksum(ccks)
                .build();
            let mut f = Vec::new();
            lz4f::compress_to_vec(&src, &mut f, &prefs).unwrap();
            frames.push(f);
        }
        for (k, f) in frames.iter().enumerate() {
            let want = decode_frame(f, src.len());
            for threads in [1, 2, 3] {
                assert_eq!(
                    par(f, src.len(), threads),
                    want,
                    "frame {k}, {threads} threads"
                );
            }
            // under the limit
            let lim = want.as_ref().map_or(0, |v| v.len().saturating_sub(1));
            assert_eq!(
                par(f, lim, 2),
                decode_frame(f, lim),
                "frame {k} limit {lim}"
            );
            // damaged: a byte flipped at many places, truncated, extended
            let step = (f.len() / 97).max(1);
            for at in (0..f.len()).step_by(step) {
                let mut d = f.clone();
                d[at] ^= 0x5A;
                assert_eq!(
                    par(&d, src.len(), 2),
                    decode_frame(&d, src.len()),
                    "frame {k} flipped at {at}"
                );
            }
            for cut in [0, 1, 7, f.len() / 2, f.len().saturating_sub(1)] {
                let d = &f[..cut.min(f.len())];
                assert_eq!(
                    par(d, src.len(), 2),
                    decode_frame(d, src.len()),
                    "frame {k} cut at {cut}"
                );
            }
            let mut d = f.clone();
            d.extend_from_slice(b"tail");
            assert_eq!(
                par(&d, src.len(), 2),
                decode_frame(&d, src.len()),
                "frame {k} + tail"
            );
        }
    }

    #[test]
    fn parallel_decode_stops_at_the_sinks_error() {
        let src: Vec<u8> = (0..5 * BLOCK_SIZE).map(|i| (i % 13) as u8).collect();
        let f = compress_to_vec(&src, 1);
        let mut calls = 0;
        let r = decode_frame_parallel(&f, src.len(), 2, |_| {
            calls += 1;
            if calls == 2 {
                Err("disk full")
            } else {
                Ok(())
            }
        });
        assert!(matches!(r, Err(DecodeError::Sink("disk full"))));
        assert_eq!(calls, 2);
    }
}
