//! What the Polytropon benchmarks share (a dev-dependency only).
//!
//! The machines are 2-core shared VMs that move between a fast and a slow
//! placement; [`pingpong_ns`] tells which one a run had, so every benchmark
//! prints it before and after.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Pins the calling thread to one CPU.
pub fn pin(cpu: usize) {
    set_affinity(&[cpu]);
}

/// Lets the calling thread run on every CPU again.
pub fn unpin() {
    set_affinity(&(0..libc::CPU_SETSIZE as usize).collect::<Vec<_>>());
}

fn set_affinity(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is valid; we set bits in it and apply it to
    // this thread (pid 0). A failure leaves the thread unpinned, which only
    // makes a measurement noisier.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Nanoseconds per cache-line round trip between cpu0 and cpu1: about 45 in
/// the VM's fast placement, about 380 in the slow one.
pub fn pingpong_ns() -> f64 {
    let line = Arc::new(AtomicU64::new(0));
    let n = 20_000u64;
    let l2 = line.clone();
    let h = std::thread::spawn(move || {
        pin(1);
        for i in 0..n {
            while l2.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            l2.store(2 * i + 2, Ordering::Release);
        }
    });
    pin(0);
    let t0 = Instant::now();
    for i in 0..n {
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    h.join().unwrap();
    unpin();
    ns
}

/// The median (upper one for an even count); NaN for no values.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A setting from the environment, or its default when unset or unparsable.
pub fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `cargo test --benches` runs bench binaries with `--test` or `--list`:
/// true when this run is such a probe and the bench should do nothing.
pub fn is_probe() -> bool {
    std::env::args().any(|a| a == "--list" || a == "--test")
}
