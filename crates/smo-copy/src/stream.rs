//! The SMO kernels: per step of two cache lines, a non-temporal prefetch of
//! source lines ahead, then streaming stores of two lines; one `sfence` at the
//! end. One kernel per vector unit, each compiled for its own target feature
//! and chosen at run time.

use crate::VectorUnit;

/// Bytes per pipeline step: two cache lines.
const STEP: usize = 128;

/// How far ahead of the step being stored the source is prefetched: the next
/// two lines, as published. Measured here (`SMO_BENCH_PREFETCH=1,2,4,8,16`
/// with `benches/pipeline.rs`, cold, 1 and 16 MiB): 2 to 16 steps ahead were
/// within 6% of 1 step either way, the run's noise, so the paper's distance stays.
pub(crate) const PREFETCH_AHEAD: usize = STEP;

/// Below this the alignment head, the fence and a half-filled
/// write-combining buffer cost more than streaming saves: plain copy.
const MIN_STREAM: usize = 4 * STEP;

pub(crate) fn is_supported(unit: VectorUnit) -> bool {
    match unit {
        VectorUnit::Portable => true,
        #[cfg(target_arch = "x86_64")]
        VectorUnit::Sse2 => true,
        #[cfg(target_arch = "x86_64")]
        VectorUnit::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
        #[cfg(target_arch = "x86_64")]
        VectorUnit::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        // Streaming kernels exist for x86-64 only; elsewhere SMO is a plain
        // copy (aarch64's ldnp/stnp are hints that recent cores mostly ignore).
        #[cfg(not(target_arch = "x86_64"))]
        _ => false,
    }
}

pub(crate) fn best() -> VectorUnit {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 = not probed yet; otherwise index into ALL plus one. Relaxed: the
    // value is the same whoever computes it, and nothing else is published.
    static BEST: AtomicU8 = AtomicU8::new(0);
    match BEST.load(Ordering::Relaxed) {
        0 => {
            let unit = VectorUnit::ALL.into_iter().rev().find(|u| is_supported(*u)).unwrap_or(VectorUnit::Portable);
            let index = VectorUnit::ALL.iter().position(|u| *u == unit).unwrap_or(0);
            BEST.store(index as u8 + 1, Ordering::Relaxed);
            unit
        }
        n => VectorUnit::ALL[usize::from(n - 1)],
    }
}

/// Copies with the unit's kernel.
///
/// # Safety
/// `src` valid for reads and `dst` for writes of `len` bytes, not
/// overlapping; `unit` supported by this CPU.
pub(crate) unsafe fn copy(unit: VectorUnit, dst: *mut u8, src: *const u8, len: usize, ahead: usize) {
    if len < MIN_STREAM || unit == VectorUnit::Portable {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
        return;
    }
    // Streaming stores need an aligned destination: copy a head of up to 63
    // bytes plainly so that `dst + head` is cache-line aligned. The source
    // keeps whatever alignment it has (unaligned loads).
    let head = dst.align_offset(64).min(len);
    let body = (len - head) / STEP * STEP;
    // SAFETY: head + body + tail = len, all within the caller's ranges.
    unsafe {
        std::ptr::copy_nonoverlapping(src, dst, head);
        let (d, s) = (dst.add(head), src.add(head));
        #[cfg(target_arch = "x86_64")]
        match unit {
            VectorUnit::Sse2 => x86::body_sse2(d, s, body, ahead),
            VectorUnit::Avx2 => x86::body_avx2(d, s, body, ahead),
            VectorUnit::Avx512 => x86::body_avx512(d, s, body, ahead),
            VectorUnit::Portable => unreachable!(),
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = ahead;
            std::ptr::copy_nonoverlapping(s, d, body);
        }
        std::ptr::copy_nonoverlapping(s.add(body), d.add(body), len - head - body);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::STEP;
    use std::arch::x86_64::*;

    /// Prefetches the two source lines `ahead` bytes past `s`, non-temporally.
    /// `wrapping_add`: past the end of the source the address may leave the
    /// allocation; a prefetch never faults, and no reference is formed.
    #[inline(always)]
    unsafe fn prefetch_step(s: *const u8, ahead: usize) {
        // SAFETY: prefetch is a hint; any address is allowed.
        unsafe {
            _mm_prefetch::<_MM_HINT_NTA>(s.wrapping_add(ahead).cast());
            _mm_prefetch::<_MM_HINT_NTA>(s.wrapping_add(ahead + 64).cast());
        }
    }

    // Each body: `d` is 64-byte aligned, `body` a multiple of STEP, both
    // ranges valid and disjoint (the caller's contract in `copy`). The
    // closing `sfence` orders the weakly-ordered streaming stores before any
    // later store, so a flag set after the copy is never seen before the data.

    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn body_sse2(d: *mut u8, s: *const u8, body: usize, ahead: usize) {
        let mut i = 0;
        while i < body {
            // SAFETY: i + STEP <= body; d + i is 16-byte aligned.
            unsafe {
                prefetch_step(s.add(i), ahead);
                let (sp, dp) = (s.add(i).cast::<__m128i>(), d.add(i).cast::<__m128i>());
                let v: [__m128i; 8] = std::array::from_fn(|k| _mm_loadu_si128(sp.add(k)));
                for (k, x) in v.into_iter().enumerate() {
                    _mm_stream_si128(dp.add(k), x);
                }
            }
            i += STEP;
        }
        // SAFETY: no operands.
        _mm_sfence();
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn body_avx2(d: *mut u8, s: *const u8, body: usize, ahead: usize) {
        let mut i = 0;
        while i < body {
            // SAFETY: i + STEP <= body; d + i is 32-byte aligned.
            unsafe {
                prefetch_step(s.add(i), ahead);
                let (sp, dp) = (s.add(i).cast::<__m256i>(), d.add(i).cast::<__m256i>());
                let v: [__m256i; 4] = std::array::from_fn(|k| _mm256_loadu_si256(sp.add(k)));
                for (k, x) in v.into_iter().enumerate() {
                    _mm256_stream_si256(dp.add(k), x);
                }
            }
            i += STEP;
        }
        // SAFETY: no operands.
        _mm_sfence();
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn body_avx512(d: *mut u8, s: *const u8, body: usize, ahead: usize) {
        let mut i = 0;
        while i < body {
            // SAFETY: i + STEP <= body; d + i is 64-byte aligned.
            unsafe {
                prefetch_step(s.add(i), ahead);
                let (sp, dp) = (s.add(i).cast::<__m512i>(), d.add(i).cast::<__m512i>());
                let a = _mm512_loadu_si512(sp);
                let b = _mm512_loadu_si512(sp.add(1));
                _mm512_stream_si512(dp, a);
                _mm512_stream_si512(dp.add(1), b);
            }
            i += STEP;
        }
        // SAFETY: no operands.
        _mm_sfence();
    }
}
