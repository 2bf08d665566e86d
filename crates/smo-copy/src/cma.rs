//! CMA, cross-memory attach: one copy straight between this process and a
//! peer with `process_vm_readv` / `process_vm_writev`.
//!
//! The kernel checks ptrace access (PTRACE_MODE_ATTACH_REALCREDS) on every
//! call; a refusal comes back as EPERM and becomes
//! `ERR_SMO_CMA_PERMISSION`, whose message says what would allow it.

use crate::Error;

type Syscall = unsafe extern "C" fn(
    libc::pid_t,
    *const libc::iovec,
    libc::c_ulong,
    *const libc::iovec,
    libc::c_ulong,
    libc::c_ulong,
) -> libc::ssize_t;

/// Reads `dst.len()` bytes at `remote_addr` in process `pid` into `dst`.
pub fn cma_read(pid: i32, remote_addr: usize, dst: &mut [u8]) -> Result<(), Error> {
    transfer("process_vm_readv", libc::process_vm_readv, pid, remote_addr, dst.as_mut_ptr(), dst.len())
}

/// Writes `src` at `remote_addr` in process `pid`.
pub fn cma_write(pid: i32, remote_addr: usize, src: &[u8]) -> Result<(), Error> {
    // The local iovec of process_vm_writev is only read from; the cast to
    // *mut is the C signature's, not a write.
    transfer("process_vm_writev", libc::process_vm_writev, pid, remote_addr, src.as_ptr().cast_mut(), src.len())
}

fn transfer(
    syscall: &'static str,
    call: Syscall,
    pid: i32,
    remote_addr: usize,
    local: *mut u8,
    len: usize,
) -> Result<(), Error> {
    let fail = |errno| Err(Error::Cma { syscall, errno, pid });
    if pid <= 0 {
        // pid 0 or negative would name no single process; the kernel says ESRCH.
        return fail(libc::ESRCH);
    }
    if remote_addr.checked_add(len).is_none() {
        return fail(libc::EFAULT);
    }
    let mut done = 0usize;
    // A call may move less than asked (the kernel stops at a page it cannot
    // reach, or at MAX_RW_COUNT); continue from there until all bytes moved
    // or a call moves nothing.
    while done < len {
        let local_iov = libc::iovec {
            // SAFETY: done < len, inside the caller's slice.
            iov_base: unsafe { local.add(done) }.cast(),
            iov_len: len - done,
        };
        let remote_iov = libc::iovec { iov_base: (remote_addr + done) as *mut libc::c_void, iov_len: len - done };
        // SAFETY: the local iovec describes (part of) a live slice of this
        // process; the remote one is checked by the kernel against the peer.
        let n = unsafe { call(pid, &local_iov, 1, &remote_iov, 1, 0) };
        if n < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            if errno == libc::EINTR {
                continue;
            }
            return fail(errno);
        }
        if n == 0 {
            return fail(libc::EFAULT);
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_own_memory() {
        // A process may always attach to itself.
        let pid = std::process::id() as i32;
        let remote = vec![5u8; 100_000];
        let mut local = vec![0u8; 100_000];
        cma_read(pid, remote.as_ptr() as usize, &mut local).unwrap();
        assert_eq!(local, remote);
        let mut target = vec![0u8; 3];
        cma_write(pid, target.as_mut_ptr() as usize, &[1, 2, 3]).unwrap();
        assert_eq!(std::hint::black_box(&target), &[1, 2, 3]);
    }

    #[test]
    fn errors_carry_codes() {
        let mut buf = [0u8; 16];
        let e = cma_read(-1, 4096, &mut buf).unwrap_err();
        assert_eq!(e.code(), "ERR_SMO_CMA_NO_PROCESS");
        let pid = std::process::id() as i32;
        // Page 0 is never mapped.
        let e = cma_read(pid, 16, &mut buf).unwrap_err();
        assert_eq!(e.code(), "ERR_SMO_CMA_BAD_ADDRESS");
        assert_eq!(e.errno(), Some(libc::EFAULT));
        let e = cma_read(pid, usize::MAX - 4, &mut buf).unwrap_err();
        assert_eq!(e.code(), "ERR_SMO_CMA_BAD_ADDRESS");
        assert!(e.to_string().contains("process_vm_readv"), "{e}");
    }

    #[test]
    fn empty_transfer_is_a_no_op() {
        cma_read(std::process::id() as i32, 0, &mut []).unwrap();
    }
}
