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

    /// One kernel per vector unit, alike but for the vector type and its
    /// unaligned load and streaming store. Each body: `d` is 64-byte aligned,
    /// `body` a multiple of STEP, both ranges valid and disjoint (the
    /// caller's contract in `copy`). The closing `sfence` orders the
    /// weakly-ordered streaming stores before any later store, so a flag set
    /// after the copy is never seen before the data.
    macro_rules! streaming_body {
        ($name:ident, $feature:literal, $vec:ty, $load:ident, $stream:ident) => {
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $name(d: *mut u8, s: *const u8, body: usize, ahead: usize) {
                const LANES: usize = STEP / std::mem::size_of::<$vec>();
                let mut i = 0;
                while i < body {
                    // SAFETY: i + STEP <= body; d + i is 64-byte aligned, so
                    // aligned for every vector width.
                    unsafe {
                        prefetch_step(s.add(i), ahead);
                        let (sp, dp) = (s.add(i).cast::<$vec>(), d.add(i).cast::<$vec>());
                        let v: [$vec; LANES] = std::array::from_fn(|k| $load(sp.add(k)));
                        for (k, x) in v.into_iter().enumerate() {
                            $stream(dp.add(k), x);
                        }
                    }
                    i += STEP;
                }
                _mm_sfence();
            }
        };
    }

    streaming_body!(body_sse2, "sse2", __m128i, _mm_loadu_si128, _mm_stream_si128);
    streaming_body!(body_avx2, "avx2", __m256i, _mm256_loadu_si256, _mm256_stream_si256);
    streaming_body!(body_avx512, "avx512f", __m512i, _mm512_loadu_si512, _mm512_stream_si512);
}
