//! Cross-memory attach between two real processes, and its permission error.

use polytropon_smo_copy::{cma_read, cma_write};

/// Forks; the child runs `f` and exits with its return value.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the test harness has other threads, so the child must not take
    // a lock another thread might have held at fork time: `f` only makes
    // system calls on memory allocated before the fork (no allocation, no
    // formatting).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = f();
        // SAFETY: leave without running the harness's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    libc::WEXITSTATUS(status)
}

#[test]
fn a_child_reads_and_writes_its_parent() {
    let parent = std::process::id() as i32;
    let source: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let target = vec![0u8; 4096];
    let (src_addr, dst_addr) = (source.as_ptr() as usize, target.as_ptr() as usize);
    let mut got = vec![0u8; 1_000_000];
    let nines = [9u8; 4096];
    let code = in_child(|| {
        if cma_read(parent, src_addr, &mut got).is_err() {
            return 1;
        }
        // The child's copy-on-write view of `source` is identical, but it
        // read the parent's pages: check the bytes, then write back.
        if got.iter().enumerate().any(|(i, b)| *b != (i % 251) as u8) {
            return 2;
        }
        if cma_write(parent, dst_addr, &nines).is_err() {
            return 3;
        }
        0
    });
    assert_eq!(code, 0);
    assert!(std::hint::black_box(&target).iter().all(|b| *b == 9));
}

#[test]
fn another_users_process_is_refused_with_a_permission_error() {
    let parent = std::process::id() as i32;
    let secret = [1u8; 64];
    let addr = secret.as_ptr() as usize;
    let code = in_child(|| {
        // Become another user (as root: nobody; otherwise the parent is
        // already ours, so aim at pid 1, owned by root).
        // SAFETY: plain syscalls.
        let target = unsafe {
            if libc::geteuid() == 0 {
                if libc::setresgid(65534, 65534, 65534) != 0 || libc::setresuid(65534, 65534, 65534) != 0 {
                    return 10;
                }
                parent
            } else {
                1
            }
        };
        let mut buf = [0u8; 64];
        match cma_read(target, addr, &mut buf) {
            Ok(()) => 11,
            Err(e) if e.code() == "ERR_SMO_CMA_PERMISSION" => 0,
            Err(_) => 12,
        }
    });
    assert_eq!(code, 0, "expected ERR_SMO_CMA_PERMISSION (child code {code})");
}

#[test]
fn the_permission_error_says_what_would_allow_it() {
    let e = polytropon_smo_copy::Error::Cma { syscall: "process_vm_readv", errno: libc::EPERM, pid: 42 };
    let text = e.to_string();
    assert!(text.contains("process 42") && text.contains("ptrace_scope") && text.contains("CAP_SYS_PTRACE"), "{text}");
}
