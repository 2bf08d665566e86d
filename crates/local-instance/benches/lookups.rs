//! What a natively answered request costs in the service, against the
//! system calls a process would make on the kernel path: a stat through
//! `Instances::serve` (decode, openat2 RESOLVE_IN_ROOT, statx, close,
//! encode) beside a plain statx of the host path, and a 100-entry listing
//! beside a plain getdents of the directory, and an open and close of a
//! file beside a plain open(2) and close(2). Interleaved rounds, medians.
//!
//!   cargo bench -p polytropon-local-instance --bench lookups
//! Env: LOOKUPS_ROUNDS (default 5), LOOKUPS_MS (per trial, default 200)

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use polytropon_bench_support::{env, is_probe, median, pingpong_ns};
use polytropon_local_instance::{wire, Instances, Limits, Served};

fn request(path: &str) -> Vec<u8> {
    let mut v = vec![wire::PROTOCOL_VERSION];
    v.extend_from_slice(&(path.len() as u32).to_le_bytes());
    v.extend_from_slice(path.as_bytes());
    v
}

/// ns per call of `f`, over `ms` milliseconds.
fn time(ms: u64, mut f: impl FnMut(usize)) -> f64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let (mut n, t0) = (0usize, Instant::now());
    while Instant::now() < end {
        for _ in 0..64 {
            f(n);
            n += 1;
        }
    }
    t0.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    if is_probe() {
        return;
    }
    let (rounds, ms) = (env("LOOKUPS_ROUNDS", 5usize), env("LOOKUPS_MS", 200u64));
    let dir = std::env::temp_dir().join(format!("polytropon-lookups-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for i in 0..100 {
        std::fs::write(dir.join(format!("data/f{i}")), b"x").unwrap();
    }
    let root = dir.to_str().unwrap().to_string();
    let mut inst = Instances::new(Limits::default(), Arc::new(|| {}));
    inst.mount("vol", &root, 1000).unwrap();
    let stats: Vec<Vec<u8>> = (0..100).map(|i| request(&format!("/vol/data/f{i}"))).collect();
    let hosts: Vec<CString> = (0..100).map(|i| CString::new(format!("{root}/data/f{i}")).unwrap()).collect();
    let listing = request("/vol/data");
    let data = CString::new(format!("{root}/data")).unwrap();

    println!("# a request answered natively vs the kernel path's system calls, ns (median of {rounds} interleaved rounds of {ms} ms); pingpong {:.0} ns", pingpong_ns());
    let opens: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut v = request(&format!("/vol/data/f{i}"));
            v.extend_from_slice(&(libc::O_RDWR as u32).to_le_bytes());
            v.extend_from_slice(&0o644u32.to_le_bytes());
            v
        })
        .collect();
    let mut by: [Vec<f64>; 6] = Default::default();
    for _ in 0..rounds {
        by[0].push(time(ms, |n| assert!(matches!(inst.serve(0, 1, 1, wire::STAT, &stats[n % 100]), Served::Reply(0, _)))));
        by[1].push(time(ms, |n| {
            // SAFETY: a zeroed statx is valid; the path is NUL-terminated.
            let mut s: libc::statx = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::statx(libc::AT_FDCWD, hosts[n % 100].as_ptr(), 0, libc::STATX_BASIC_STATS | libc::STATX_BTIME, &mut s) }, 0);
        }));
        by[2].push(time(ms, |_| assert!(matches!(inst.serve(0, 1, 1, wire::READDIR, &listing), Served::Reply(0, _)))));
        by[3].push(time(ms, |_| {
            // SAFETY: opendir/readdir/closedir on a NUL-terminated path, the DIR* closed once.
            unsafe {
                let d = libc::opendir(data.as_ptr());
                assert!(!d.is_null());
                while !libc::readdir64(d).is_null() {}
                libc::closedir(d);
            }
        }));
        by[4].push(time(ms, |n| {
            let handle = match inst.serve(0, 1, 1, wire::OPEN, &opens[n % 100]) {
                Served::Reply(0, reply) => reply[1..9].to_vec(),
                other => panic!("open: {other:?}"),
            };
            let mut close = vec![wire::PROTOCOL_VERSION];
            close.extend_from_slice(&handle);
            assert!(matches!(inst.serve(0, 1, 1, wire::CLOSE, &close), Served::Reply(0, _)));
        }));
        by[5].push(time(ms, |n| {
            // SAFETY: open(2) of a NUL-terminated path; the descriptor closed once.
            unsafe {
                let fd = libc::open(hosts[n % 100].as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                assert!(fd >= 0);
                libc::close(fd);
            }
        }));
    }
    let m: Vec<f64> = by.into_iter().map(median).collect();
    println!("stat      native {:>8.0}   plain statx        {:>8.0}   native/plain {:.2}x", m[0], m[1], m[0] / m[1]);
    println!("readdir   native {:>8.0}   plain getdents     {:>8.0}   native/plain {:.2}x", m[2], m[3], m[2] / m[3]);
    println!("open+close native {:>7.0}   plain open, close  {:>8.0}   native/plain {:.2}x", m[4], m[5], m[4] / m[5]);
    println!("pingpong after {:.0} ns", pingpong_ns());
    let _ = std::fs::remove_dir_all(&dir);
}
