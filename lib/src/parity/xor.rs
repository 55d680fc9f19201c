//! XOR parity over byte slices, written so that LLVM vectorises it (SSE2/AVX2 on x86-64):
//! the hot loops work on fixed 64-byte chunks with no bounds checks inside, then finish the
//! tail byte by byte. Nothing here allocates.
//!
//! Invariant: every function takes slices of equal length and panics otherwise (a caller bug,
//! never reachable from input bytes: shard sizes are fixed by the set's geometry).

const LANE: usize = 64;

/// `dst ^= src`.
pub fn xor_into(dst: &mut [u8], src: &[u8]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "xor_into: slices of different lengths"
    );
    let mut d = dst.chunks_exact_mut(LANE);
    let mut s = src.chunks_exact(LANE);
    for (dc, sc) in (&mut d).zip(&mut s) {
        let dc: &mut [u8; LANE] = dc.try_into().unwrap();
        let sc: &[u8; LANE] = sc.try_into().unwrap();
        for k in 0..LANE {
            dc[k] ^= sc[k];
        }
    }
    for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a ^= *b;
    }
}

/// `dst = a ^ b` in one pass (the 2+1 case: one read of each input, one write).
pub fn xor2(dst: &mut [u8], a: &[u8], b: &[u8]) {
    assert!(
        dst.len() == a.len() && a.len() == b.len(),
        "xor2: slices of different lengths"
    );
    let mut d = dst.chunks_exact_mut(LANE);
    let mut x = a.chunks_exact(LANE);
    let mut y = b.chunks_exact(LANE);
    for ((dc, xc), yc) in (&mut d).zip(&mut x).zip(&mut y) {
        let dc: &mut [u8; LANE] = dc.try_into().unwrap();
        let xc: &[u8; LANE] = xc.try_into().unwrap();
        let yc: &[u8; LANE] = yc.try_into().unwrap();
        for k in 0..LANE {
            dc[k] = xc[k] ^ yc[k];
        }
    }
    for ((o, p), q) in d
        .into_remainder()
        .iter_mut()
        .zip(x.remainder())
        .zip(y.remainder())
    {
        *o = *p ^ *q;
    }
}

/// `dst = XOR of every slice yielded by `srcs`` (a copy when there is only one: the RAIT
/// mirror). With no source at all `dst` becomes zeros.
pub fn xor_all<'a>(dst: &mut [u8], mut srcs: impl Iterator<Item = &'a [u8]>) {
    match (srcs.next(), srcs.next()) {
        (None, _) => dst.fill(0),
        (Some(a), None) => dst.copy_from_slice(a),
        (Some(a), Some(b)) => {
            xor2(dst, a, b);
            for s in srcs {
                xor_into(dst, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(srcs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0u8; srcs[0].len()];
        for s in srcs {
            for (o, b) in out.iter_mut().zip(s) {
                *o ^= b;
            }
        }
        out
    }

    #[test]
    fn equals_bytewise_xor_for_odd_lengths() {
        let mut seed = 7u32;
        for len in [0usize, 1, 63, 64, 65, 130, 4097] {
            for n in 1..5 {
                let srcs: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        (0..len)
                            .map(|_| {
                                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                                (seed >> 16) as u8
                            })
                            .collect()
                    })
                    .collect();
                let mut dst = vec![0xAAu8; len];
                xor_all(&mut dst, srcs.iter().map(|v| &v[..]));
                assert_eq!(dst, naive(&srcs), "len {len} n {n}");
            }
        }
    }
}
