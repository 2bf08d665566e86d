//! The atomics and the blocking primitive the queue is written against.
//!
//! Normal builds use `std` atomics and a shared futex. Under `--cfg loom` the
//! same code runs on loom's atomics, and a futex wait becomes a yield, so loom
//! explores every interleaving of the state machine (it cannot model futexes).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` when given.
/// Returns on a wake, a timeout, a signal or a changed value alike: callers
/// always re-read the state.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU64, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the futex is the low half of a live, aligned u64 (little-endian,
    // checked below); FUTEX_WAIT (without FUTEX_PRIVATE_FLAG, so waiters in
    // other processes mapping the same segment match) only reads it. The
    // timespec outlives the call.
    unsafe {
        libc::syscall(libc::SYS_futex, low_half(word), libc::FUTEX_WAIT, expected, ts_ptr, std::ptr::null::<u32>(), 0);
    }
}

// The futex is the low 32 bits of a 64-bit state word; on a big-endian
// machine those sit at address + 4. Only little-endian targets are supported.
#[cfg(not(target_endian = "little"))]
compile_error!("polytropon-rcqb places its futex in the low half of a u64 and supports little-endian targets only");

#[cfg(not(loom))]
fn low_half(word: &AtomicU64) -> *const u32 {
    word.as_ptr() as *const u32
}

/// Wakes every thread, in any process, sleeping on `word`.
#[cfg(not(loom))]
pub(crate) fn futex_wake_all(word: &AtomicU64) {
    // SAFETY: the address is that of a live word; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(libc::SYS_futex, low_half(word), libc::FUTEX_WAKE, i32::MAX, std::ptr::null::<libc::timespec>(), std::ptr::null::<u32>(), 0);
    }
}

// Under loom a futex is modelled by one mutex + condvar: the compare happens
// under the mutex and wakes take it too, which is exactly the futex contract
// (no wake lost between the compare and the sleep). A lost wake-up in the
// queue's own protocol then shows up as a loom deadlock.
#[cfg(loom)]
loom::lazy_static! {
    static ref FUTEX: (loom::sync::Mutex<()>, loom::sync::Condvar) = (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
}

#[cfg(loom)]
pub(crate) fn futex_wait(word: &AtomicU64, expected: u32, _timeout: Option<Duration>) {
    let (m, cv) = &*FUTEX;
    let g = m.lock().unwrap();
    if word.load(Ordering::SeqCst) as u32 == expected {
        drop(cv.wait(g).unwrap());
    }
}

#[cfg(loom)]
pub(crate) fn futex_wake_all(_word: &AtomicU64) {
    let (m, cv) = &*FUTEX;
    let _g = m.lock().unwrap();
    cv.notify_all();
}

/// A CPU hint inside spin loops; a scheduling point under loom.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Whether a process still exists (used to recover slots whose holder died).
#[cfg(not(loom))]
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return true; // unknown holder: assume alive, never steal
    }
    // SAFETY: signal 0 performs only the existence and permission check.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(loom)]
pub(crate) fn process_alive(_pid: u32) -> bool {
    true
}
