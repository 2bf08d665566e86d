//! The two kernel facilities the channel waits on: shared futexes (threads
//! and processes block the same way) and pidfds (a peer's death is seen
//! without racing pid reuse).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` holds `expected`, at most `timeout`. Returns on a
/// wake, a timeout, a signal or a changed value alike: callers re-check.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned u32 (in shared memory: the shared,
    // non-PRIVATE futex op); the timespec outlives the call.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts as *const libc::timespec, 0usize, 0u32);
    }
}

/// Wakes every sleeper on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32);
    }
}

/// A handle on another process that tells whether it still runs.
#[derive(Debug)]
pub(crate) struct ProcessWatch {
    pid: i32,
    /// A pidfd, or -1 where the kernel has none (or the pid is in another
    /// namespace): then `kill(pid, 0)`, which pid reuse can fool.
    fd: i32,
}

impl ProcessWatch {
    pub(crate) fn new(pid: i32) -> ProcessWatch {
        // SAFETY: a plain syscall; the result is owned by this value.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        ProcessWatch { pid, fd: fd.max(-1) }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// False once the process has exited (or never existed).
    pub(crate) fn is_alive(&self) -> bool {
        if self.fd >= 0 {
            loop {
                let mut p = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
                // SAFETY: one pollfd on the stack; zero timeout. A pidfd polls
                // readable when its process exits.
                let n = unsafe { libc::poll(&mut p, 1, 0) };
                match n {
                    0 => return true,
                    // A signal (a profiler's, a timer's) is no death: ask again.
                    _ if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
                    _ if n > 0 && p.revents & libc::POLLNVAL == 0 => return false,
                    // The descriptor is not ours any more (closed by other
                    // code of the process) or poll failed: ask the other way.
                    _ => break,
                }
            }
        }
        // SAFETY: signal 0 only checks existence and permission.
        let r = unsafe { libc::kill(self.pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

impl Drop for ProcessWatch {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(self.fd) };
        }
    }
}
