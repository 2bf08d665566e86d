//! Echo round trips between two processes on two cores: the channel against
//! a Unix domain socket doing the same echo, interleaved in one run.
//!
//! The service (a forked child, pinned to cpu1) answers every request with
//! its payload; the client (cpu0) times round trips of 0 B, 4 KiB and 1 MiB.
//! "busy": the service spins between requests (the channel's take spins 1 ms
//! before sleeping, the socket peer is a blocking read, as sockets are).
//! Settings: IPC_BENCH_ROUNDS (5), IPC_BENCH_MS (300 per trial).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use polytropon_bench_support::{env, is_probe, median, pin, pingpong_ns, unpin};
use polytropon_ipc::{BackDriver, BackOptions, FrontDriver, FrontOptions, Geometry};

const SIZES: [usize; 3] = [0, 4096, 1 << 20];

fn fork(f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the bench is single-threaded when it forks (pingpong's thread
    // is joined), so the child may allocate freely.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        pin(1);
        f();
        // SAFETY: leave without running the parent's exit path.
        unsafe { libc::_exit(0) };
    }
    pid
}

fn reap(pid: libc::pid_t) {
    // SAFETY: our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Median round trip in microseconds over batches, for `dur`.
fn time_batches(dur: Duration, mut one: impl FnMut()) -> f64 {
    let mut per = vec![];
    let end = Instant::now() + dur;
    while Instant::now() < end {
        let t0 = Instant::now();
        for _ in 0..20 {
            one();
        }
        per.push(t0.elapsed().as_secs_f64() * 1e6 / 20.0);
    }
    median(per)
}

/// `in_place`: the service echoes in the client's buffer (zero copies on
/// its side, as a service that reads a file straight into the buffer
/// does); otherwise it copies each request out and the reply back in.
fn channel(size: usize, dur: Duration, in_place: bool) -> f64 {
    let name = format!("ipc-bench-{}", std::process::id());
    let geometry = Geometry { queue_count: 1, queue_capacity: 64, buffer_count: 4, buffer_size: 2 << 20 };
    let (r, w) = pipe();
    let child = fork(|| {
        let copy_limit = if in_place { 16 << 10 } else { usize::MAX };
        let mut back = BackDriver::create(&name, BackOptions { geometry, max_request: 4 << 20, copy_limit }).unwrap();
        write_byte(w);
        loop {
            for req in back.take(16, Duration::from_millis(1), Duration::from_millis(100)) {
                if req.in_place > 0 {
                    back.complete_in_place(req.token(), 0, req.in_place);
                } else {
                    back.complete(req.token(), 0, &req.payload);
                }
            }
        }
    });
    read_byte(r);
    pin(0);
    let mut front = FrontDriver::attach(&name, FrontOptions { spin: Duration::from_millis(1), queue: None }).unwrap();
    let payload = vec![7u8; size];
    let mut reply = Vec::with_capacity(size);
    let us = time_batches(dur, || {
        front.call(1, &payload, &mut reply).unwrap();
        assert_eq!(reply.len(), size);
    });
    drop(front);
    reap(child);
    let _ = polytropon_shm::Segment::unlink(&name);
    let _ = polytropon_rcqb::Rcqb::unlink(&format!("{name}.q0"));
    unpin();
    us
}

fn socket(size: usize, dur: Duration) -> f64 {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let child = fork(move || {
        let mut buf = vec![0u8; (1 << 20) + 8];
        loop {
            let mut len = [0u8; 8];
            if b.read_exact(&mut len).is_err() {
                return;
            }
            let n = u64::from_le_bytes(len) as usize;
            b.read_exact(&mut buf[..n]).unwrap();
            b.write_all(&len).unwrap();
            b.write_all(&buf[..n]).unwrap();
        }
    });
    pin(0);
    let payload = vec![7u8; size];
    let mut reply = vec![0u8; size];
    let us = time_batches(dur, || {
        a.write_all(&(size as u64).to_le_bytes()).unwrap();
        a.write_all(&payload).unwrap();
        let mut len = [0u8; 8];
        a.read_exact(&mut len).unwrap();
        a.read_exact(&mut reply).unwrap();
    });
    drop(a);
    reap(child);
    unpin();
    us
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: two out-parameters.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}
fn write_byte(fd: i32) {
    // SAFETY: one byte from the stack to our pipe.
    unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
}
fn read_byte(fd: i32) {
    let mut b = [0u8];
    // SAFETY: one byte into the stack from our pipe.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
}

fn main() {
    if is_probe() {
        return;
    }
    let rounds: usize = env("IPC_BENCH_ROUNDS", 5);
    let dur = Duration::from_millis(env("IPC_BENCH_MS", 300));
    println!("# channel echo between two processes (client cpu0, service cpu1); median round trip in us over {rounds} interleaved rounds; pingpong {:.0} ns before", pingpong_ns());
    println!("{:>9} {:>12} {:>16} {:>10} {:>14} {:>18}", "size", "channel", "channel in place", "socket", "socket/channel", "socket/in place");
    for size in SIZES {
        let (mut c, mut p, mut s) = (vec![], vec![], vec![]);
        for r in 0..rounds {
            // A B C, then C B A.
            let mut trials: [&mut dyn FnMut(); 3] = [
                &mut || c.push(channel(size, dur, false)),
                &mut || p.push(channel(size, dur, true)),
                &mut || s.push(socket(size, dur)),
            ];
            if r % 2 == 1 {
                trials.reverse();
            }
            for t in trials {
                t();
            }
        }
        let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(a, b)| a / b).collect());
        let (sc, sp) = (ratio(&s, &c), ratio(&s, &p));
        println!("{size:>9} {:>12.2} {:>16.2} {:>10.2} {sc:>14.2} {sp:>18.2}", median(c), median(p), median(s));
    }
    println!("# pingpong {:.0} ns after", pingpong_ns());
}
