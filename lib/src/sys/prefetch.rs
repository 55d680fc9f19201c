//! A cache prefetch hint for a byte of a slice: starts the memory access early so that
//! latency-bound walks (hopping from event header to event header) overlap their misses.
//! Never faults and never changes anything; a no-op off x86_64.

/// Hint that `b[at]` will be read soon. Out-of-range `at` is ignored.
#[inline(always)]
pub fn prefetch(b: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = b.get(at) {
        // SAFETY: PREFETCHT0 is a hint: it never faults, even on unmapped addresses, and
        // reads nothing into the program's state; `p` points into a live slice anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                p as *const u8 as *const i8,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (b, at);
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetch_in_and_out_of_range() {
        let v = vec![1u8; 100];
        super::prefetch(&v, 0);
        super::prefetch(&v, 99);
        super::prefetch(&v, 100);
        super::prefetch(&[], 0);
    }
}
