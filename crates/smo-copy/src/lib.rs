//! SMO, the Shared-memory Optimized copy (Polytropon, SoCC 2020), with the two
//! copies it is measured against.
//!
//! Data between an application and its I/O service crosses shared memory
//! twice: source -> shared memory in one process, shared memory -> destination
//! in the other. A plain `memcpy` (**SMC** here) pulls both buffers through
//! the writer's caches, so the reader on another core then fetches every line
//! from that cache, and the writer first reads each destination line it is
//! about to overwrite. **SMO** instead pipelines, per step of two cache lines,
//! (1) a non-temporal prefetch of the next two source lines and (2) streaming
//! (non-temporal) stores of two lines into the destination, with one store
//! fence at the end: the destination is never read and never pollutes the
//! cache. **CMA** ([`cma_read`], [`cma_write`]) is the other way out: one copy
//! straight between two processes' memories with `process_vm_readv/writev`.
//!
//! Streaming stores lose when the data is cache-resident and about to be read
//! again on the same core, so [`Method::Auto`] uses SMO from
//! [`AUTO_STREAMING_MIN`] bytes up and a plain copy below.
//!
//! ```
//! use polytropon_smo_copy::{copy, Method};
//! let src = vec![7u8; 1 << 20];
//! let mut dst = vec![0u8; 1 << 20];
//! copy(&mut dst, &src, Method::Auto);
//! assert_eq!(dst, src);
//! ```

mod cma;
mod stream;

pub use cma::{cma_read, cma_write};

use std::fmt;

/// The copy a caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// SMO from [`AUTO_STREAMING_MIN`] bytes up, a plain copy below.
    Auto,
    /// Always SMO, with the widest vector unit this CPU has.
    Smo,
    /// Always a plain `memcpy`.
    Smc,
}

/// The vector unit an SMO kernel runs on. Each is a separate kernel so that
/// tests and benchmarks can force every one the CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VectorUnit {
    /// No streaming stores: a plain copy (architectures other than x86-64).
    Portable,
    /// 16-byte `movntdq` (every x86-64 CPU).
    Sse2,
    /// 32-byte `vmovntdq`.
    Avx2,
    /// 64-byte `vmovntdq` (one store per cache line).
    Avx512,
}

impl VectorUnit {
    /// Every unit, narrowest first.
    pub const ALL: [VectorUnit; 4] = [VectorUnit::Portable, VectorUnit::Sse2, VectorUnit::Avx2, VectorUnit::Avx512];

    /// Whether this CPU can run the unit's kernel.
    pub fn is_supported(self) -> bool {
        stream::is_supported(self)
    }

    /// The widest supported unit: what [`Method::Smo`] and [`Method::Auto`] use.
    pub fn best() -> VectorUnit {
        stream::best()
    }

    /// The units this CPU supports, narrowest first.
    pub fn supported() -> Vec<VectorUnit> {
        Self::ALL.into_iter().filter(|u| u.is_supported()).collect()
    }

    /// Lower-case name (`"avx512"`), as the npm package spells it.
    pub fn name(self) -> &'static str {
        match self {
            VectorUnit::Portable => "portable",
            VectorUnit::Sse2 => "sse2",
            VectorUnit::Avx2 => "avx2",
            VectorUnit::Avx512 => "avx512",
        }
    }

    /// The inverse of [`VectorUnit::name`].
    pub fn from_name(name: &str) -> Option<VectorUnit> {
        Self::ALL.into_iter().find(|u| u.name() == name)
    }
}

/// Smallest copy for which [`Method::Auto`] streams.
///
/// Measured with `benches/pipeline.rs` (two processes on two cores through
/// shared memory; figures in BENCHMARKS.md): at 4 KiB the fence and the
/// alignment head make SMO lose to memcpy whenever the other core can fetch
/// the lines from cache quickly; from 16 KiB up SMO won whenever the data
/// was not already cache-resident. The one case where memcpy still wins
/// above this size is data reused while it sits in the shared cache (the
/// same 1-4 MiB copied again and again); I/O data is not like that.
pub const AUTO_STREAMING_MIN: usize = 16 * 1024;

/// Errors of the checked and cross-process calls, each with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A forced vector unit this CPU does not have.
    Unsupported(VectorUnit),
    /// A `process_vm_readv/writev` call failed.
    Cma {
        /// `"process_vm_readv"` or `"process_vm_writev"`.
        syscall: &'static str,
        /// The operating system's error number.
        errno: i32,
        /// Peer process.
        pid: i32,
    },
}

impl Error {
    /// Stable code: `ERR_SMO_UNSUPPORTED`, `ERR_SMO_CMA_PERMISSION` (EPERM /
    /// EACCES: ptrace rules forbid the access), `ERR_SMO_CMA_NO_PROCESS`
    /// (ESRCH), `ERR_SMO_CMA_BAD_ADDRESS` (EFAULT: a range not mapped in
    /// either process), `ERR_SMO_CMA_UNAVAILABLE` (ENOSYS: kernel without
    /// CMA), `ERR_SMO_IO` (anything else).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unsupported(_) => "ERR_SMO_UNSUPPORTED",
            Error::Cma { errno, .. } => match *errno {
                libc::EPERM | libc::EACCES => "ERR_SMO_CMA_PERMISSION",
                libc::ESRCH => "ERR_SMO_CMA_NO_PROCESS",
                libc::EFAULT => "ERR_SMO_CMA_BAD_ADDRESS",
                libc::ENOSYS => "ERR_SMO_CMA_UNAVAILABLE",
                _ => "ERR_SMO_IO",
            },
        }
    }

    /// The operating system's error number, for CMA errors.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Cma { errno, .. } => Some(*errno),
            Error::Unsupported(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unsupported(u) => write!(f, "this CPU has no {} unit; supported: {:?}", u.name(), VectorUnit::supported()),
            Error::Cma { syscall, errno, pid } => {
                let os = std::io::Error::from_raw_os_error(*errno);
                write!(f, "{syscall} with process {pid} failed: {os}")?;
                if matches!(*errno, libc::EPERM | libc::EACCES) {
                    write!(
                        f,
                        " (cross-memory attach needs ptrace access to the peer: the same user and \
                         kernel.yama.ptrace_scope 0, or CAP_SYS_PTRACE, or the peer allowing this \
                         process with prctl(PR_SET_PTRACER))"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Copies `src` into `dst` with `method`.
///
/// # Panics
/// If the lengths differ, as `<[u8]>::copy_from_slice` does.
pub fn copy(dst: &mut [u8], src: &[u8], method: Method) {
    assert_eq!(dst.len(), src.len(), "copy: destination and source lengths differ");
    // SAFETY: two valid slices of equal length; a &mut and a & cannot overlap.
    unsafe { copy_raw(dst.as_mut_ptr(), src.as_ptr(), src.len(), method) }
}

/// Copies `src` into `dst` with SMO on a forced vector unit.
///
/// # Panics
/// If the lengths differ.
pub fn copy_with(dst: &mut [u8], src: &[u8], unit: VectorUnit) -> Result<(), Error> {
    assert_eq!(dst.len(), src.len(), "copy_with: destination and source lengths differ");
    // SAFETY: as in `copy`.
    unsafe { copy_raw_with(dst.as_mut_ptr(), src.as_ptr(), src.len(), unit) }
}

/// Copies `len` bytes from `src` to `dst` with `method`: the form for shared
/// memory, where no Rust reference to the region may exist.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, and the
/// two ranges must not overlap. The ranges may be shared memory that another
/// process could write during the copy: that is a data race, so the copied
/// bytes are then unspecified; callers in this project hand each region over
/// with an acquire/release flag so that no such race happens.
pub unsafe fn copy_raw(dst: *mut u8, src: *const u8, len: usize, method: Method) {
    let stream = match method {
        Method::Smc => false,
        Method::Smo => true,
        Method::Auto => len >= AUTO_STREAMING_MIN,
    };
    if stream {
        // SAFETY: the caller's contract; `best()` is supported by definition.
        unsafe { stream::copy(stream::best(), dst, src, len, stream::PREFETCH_AHEAD) }
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
    }
}

/// [`copy_raw`] with SMO on a forced vector unit.
///
/// # Safety
/// As [`copy_raw`].
pub unsafe fn copy_raw_with(dst: *mut u8, src: *const u8, len: usize, unit: VectorUnit) -> Result<(), Error> {
    if !unit.is_supported() {
        return Err(Error::Unsupported(unit));
    }
    // SAFETY: the caller's contract, and the unit is supported.
    unsafe { stream::copy(unit, dst, src, len, stream::PREFETCH_AHEAD) };
    Ok(())
}

/// SMO on the best unit with the source prefetched `steps` steps (of two
/// cache lines) ahead instead of one: for benchmarks that tune it.
///
/// # Safety
/// As [`copy_raw`].
#[doc(hidden)]
pub unsafe fn copy_raw_prefetching(dst: *mut u8, src: *const u8, len: usize, steps: usize) {
    // SAFETY: the caller's contract; `best()` is supported.
    unsafe { stream::copy(stream::best(), dst, src, len, steps.max(1) * 128) }
}

/// Whether `[a, a + a_len)` and `[b, b + b_len)` share a byte.
pub fn overlaps(a: usize, a_len: usize, b: usize, b_len: usize) -> bool {
    a_len != 0 && b_len != 0 && a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_exact_at_the_edges() {
        assert!(!overlaps(0, 10, 10, 10));
        assert!(overlaps(0, 11, 10, 10));
        assert!(overlaps(10, 10, 0, 11));
        assert!(!overlaps(5, 0, 0, 100), "an empty range overlaps nothing");
        assert!(overlaps(usize::MAX - 4, 4, usize::MAX - 1, 1));
    }

    #[test]
    fn names_round_trip() {
        for u in VectorUnit::ALL {
            assert_eq!(VectorUnit::from_name(u.name()), Some(u));
        }
        assert_eq!(VectorUnit::from_name("avx1024"), None);
    }

    #[test]
    fn portable_is_always_supported_and_best_is_supported() {
        assert!(VectorUnit::Portable.is_supported());
        assert!(VectorUnit::best().is_supported());
        assert_eq!(VectorUnit::supported().last().copied(), Some(VectorUnit::best()));
    }
}
