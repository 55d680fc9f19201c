//! Reed-Solomon decoding as a matrix product, for the code of `reed-solomon-simd`.
//!
//! That code is linear per 16-bit symbol: recovery shard `k` is Σ g[k][j]·data[j] over
//! GF(2^16), the same coefficients at every symbol position (a shard is 64-byte chunks of 32
//! low bytes then 32 high bytes; `Engine::mul` multiplies every symbol by one constant). The
//! coefficients are read once from the crate's own encoder (one unit symbol per data shard), so
//! the matrix is the crate's code by construction. A loss pattern's decode matrix (lost data
//! shards as sums of present shards) is solved once per pattern; each lost shard is then a few
//! multiply-and-XOR passes over L1-sized blocks, several times cheaper than the crate's
//! FFT decoder per byte (no fixed cost per call either). Used only for spans that are whole
//! 64-byte chunks; the crate's decoder handles the rest.
//!
//! Invariants: no allocation per call; output is byte-identical to the crate's decoder (tested
//! with every loss pattern in `super::tests`).

use reed_solomon_simd::engine::{tables::get_exp_log, DefaultEngine, Engine, GfElement};
use reed_solomon_simd::ReedSolomonEncoder;

const ORDER: u32 = 65535;

fn gf_mul(a: GfElement, b: GfElement) -> GfElement {
    if a == 0 || b == 0 {
        return 0;
    }
    let t = get_exp_log();
    let s = (t.log[a as usize] as u32 + t.log[b as usize] as u32) % ORDER;
    t.exp[s as usize]
}

fn gf_inv(a: GfElement) -> GfElement {
    let t = get_exp_log();
    t.exp[((ORDER - t.log[a as usize] as u32) % ORDER) as usize]
}

/// Symbol 0 of a shard.
fn sym0(s: &[u8]) -> GfElement {
    s[0] as GfElement | (s[32] as GfElement) << 8
}

/// The decode plan of one loss pattern: for each lost data shard, the present shards it is
/// a sum of, with the log of each coefficient (as `Engine::mul` takes it).
pub(super) struct Plan {
    pub present: Vec<bool>,
    terms: Vec<(usize, Vec<(usize, GfElement)>)>,
}

/// g[k][j] of the crate's code (`parity` rows of `data` elements), or `None` if the crate
/// does not behave as expected (then the caller keeps using its decoder).
pub(super) fn generator(d: usize, m: usize) -> Option<Vec<Vec<GfElement>>> {
    let mut g = vec![Vec::with_capacity(d); m];
    let mut enc = ReedSolomonEncoder::new(d, m, 64).ok()?;
    let zero = [0u8; 64];
    let mut unit = [0u8; 64];
    unit[0] = 1;
    let v = sym0(&unit);
    for j in 0..d {
        enc.reset(d, m, 64).ok()?;
        for i in 0..d {
            enc.add_original_shard(if i == j { &unit[..] } else { &zero[..] })
                .ok()?;
        }
        let res = enc.encode().ok()?;
        for (row, r) in g.iter_mut().zip(res.recovery_iter()) {
            // every other symbol of the unit shard is 0, so it must be 0 in the recovery too
            if r[1..32].iter().chain(&r[33..]).any(|&b| b != 0) {
                return None;
            }
            row.push(gf_mul(sym0(r), gf_inv(v)));
        }
    }
    Some(g)
}

/// Solve the pattern `present` (data then parity; at most `m` lost) over generator `g`.
/// `None` when the system is singular (cannot happen for an MDS code; the caller falls back).
pub(super) fn plan(g: &[Vec<GfElement>], d: usize, present: &[bool]) -> Option<Plan> {
    let lost: Vec<usize> = (0..d).filter(|&j| !present[j]).collect();
    let t = lost.len();
    let rows: Vec<usize> = (0..g.len()).filter(|&k| present[d + k]).take(t).collect();
    if rows.len() < t {
        return None;
    }
    // A = g[rows][lost], inverted by Gauss-Jordan (addition is XOR).
    let mut a: Vec<Vec<GfElement>> = rows
        .iter()
        .map(|&k| lost.iter().map(|&j| g[k][j]).collect())
        .collect();
    // the identity element is exp[0] (the crate's representation is not the plain integers)
    let one = get_exp_log().exp[0];
    let mut inv: Vec<Vec<GfElement>> = (0..t)
        .map(|i| (0..t).map(|c| if i == c { one } else { 0 }).collect())
        .collect();
    for col in 0..t {
        let p = (col..t).find(|&r| a[r][col] != 0)?;
        a.swap(col, p);
        inv.swap(col, p);
        let f = gf_inv(a[col][col]);
        for c in 0..t {
            a[col][c] = gf_mul(a[col][c], f);
            inv[col][c] = gf_mul(inv[col][c], f);
        }
        for r in 0..t {
            if r != col && a[r][col] != 0 {
                let f = a[r][col];
                for c in 0..t {
                    a[r][c] ^= gf_mul(f, a[col][c]);
                    inv[r][c] ^= gf_mul(f, inv[col][c]);
                }
            }
        }
    }
    let log = &get_exp_log().log;
    let mut terms = Vec::with_capacity(t);
    for (li, &x) in lost.iter().enumerate() {
        let mut ts = Vec::new();
        // present data j: Σ_k inv[li][k]·g[rows[k]][j]
        for j in (0..d).filter(|&j| present[j]) {
            let c = (0..t).fold(0, |acc, k| acc ^ gf_mul(inv[li][k], g[rows[k]][j]));
            if c != 0 {
                ts.push((j, log[c as usize]));
            }
        }
        for (k, &row) in rows.iter().enumerate() {
            let c = inv[li][k];
            if c != 0 {
                ts.push((d + row, log[c as usize]));
            }
        }
        terms.push((x, ts));
    }
    Some(Plan {
        present: present.to_vec(),
        terms,
    })
}

/// Block of work, small enough to stay in L1 with its source.
const BLOCK: usize = 4096;

/// Rebuild the lost data shards of `shards` (all of one length, a multiple of 64) by `plan`.
pub(super) fn apply(plan: &Plan, shards: &mut [&mut [u8]]) {
    let len = shards[0].len();
    debug_assert!(len.is_multiple_of(64));
    let engine = DefaultEngine::new();
    let mut tmp = [[0u8; 64]; BLOCK / 64];
    for (x, ts) in &plan.terms {
        let dst = std::mem::take(&mut shards[*x]);
        let mut off = 0;
        while off < len {
            let n = BLOCK.min(len - off);
            let out = &mut dst[off..off + n];
            for (i, &(src, lg)) in ts.iter().enumerate() {
                let t = &mut tmp[..n / 64];
                t.as_flattened_mut()
                    .copy_from_slice(&shards[src][off..off + n]);
                engine.mul(t, lg);
                if i == 0 {
                    out.copy_from_slice(t.as_flattened());
                } else {
                    super::xor_into(out, t.as_flattened());
                }
            }
            if ts.is_empty() {
                out.fill(0);
            }
            off += n;
        }
        shards[*x] = dst;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reed_solomon_simd::ReedSolomonDecoder;

    /// The matrix decode gives what the crate's decoder gives, for every pattern of up to
    /// `m` lost shards (data and parity), at a length that is not a multiple of `BLOCK`.
    #[test]
    fn matrix_decode_matches_crate_decoder() {
        for (d, m) in [(2, 2), (4, 2), (5, 3), (10, 4)] {
            let n = d + m;
            let len = 64 * 67;
            let data: Vec<Vec<u8>> = (0..d)
                .map(|i| {
                    (0..len)
                        .map(|j| (j * 29 + i * 101 + (j >> 9) * 7) as u8)
                        .collect()
                })
                .collect();
            let mut enc = ReedSolomonEncoder::new(d, m, len).unwrap();
            for s in &data {
                enc.add_original_shard(s).unwrap();
            }
            let res = enc.encode().unwrap();
            let mut good = data.clone();
            good.extend(res.recovery_iter().map(|r| r.to_vec()));
            drop(res);
            let g = generator(d, m).expect("generator");
            for mask in 0u32..(1 << n) {
                if mask.count_ones() as usize > m || mask & ((1 << d) - 1) == 0 {
                    continue;
                }
                let present: Vec<bool> = (0..n).map(|i| mask & (1 << i) == 0).collect();
                let p = plan(&g, d, &present).expect("plan");
                let mut bufs = good.clone();
                for (b, &ok) in bufs.iter_mut().zip(&present) {
                    if !ok {
                        b.fill(0xA5);
                    }
                }
                let mut sl: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
                apply(&p, &mut sl);
                let mut dec = ReedSolomonDecoder::new(d, m, len).unwrap();
                for i in (0..n).filter(|&i| present[i]) {
                    if i < d {
                        dec.add_original_shard(i, &good[i]).unwrap();
                    } else {
                        dec.add_recovery_shard(i - d, &good[i]).unwrap();
                    }
                }
                let out = dec.decode().unwrap();
                for (i, r) in out.restored_original_iter() {
                    assert_eq!(bufs[i], r, "d={d} m={m} mask={mask:b} shard {i}");
                    assert_eq!(bufs[i], good[i]);
                }
            }
        }
    }
}
