//! Copies through shared memory between two processes on two cores, as the
//! I/O path does: a producer (cpu 0) copies source -> shared slot, a consumer
//! (cpu 1, a forked child) copies shared slot -> destination. Two slots, so the
//! producer fills one while the consumer drains the other.
//!
//! Peers, interleaved in every round (rotating which goes first):
//! - SMO: both legs with streaming stores (`Method::Smo`);
//! - SMC: both legs with memcpy;
//! - auto: `Method::Auto` on both legs;
//! - CMA: no shared slot; the consumer pulls the producer's source straight
//!   into its destination with `process_vm_readv` (one copy).
//!
//! Beside them, one thread on one core copying 16 MiB blocks with memcpy:
//! the memory system's limit for one thread.
//!
//! Settings: SMO_BENCH_ROUNDS (5), SMO_BENCH_MB (bytes moved per trial, 256),
//! SMO_BENCH_SIZES (KiB, comma-separated; 4,64,256,1024,4096,16384),
//! SMO_BENCH_MODES (cold,ring,hot), SMO_BENCH_WS_MB (cold working set, 256),
//! SMO_BENCH_PREFETCH (e.g. 1,2,4,8: instead, compare prefetch distances).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use polytropon_bench_support::{env, is_probe, median, pin, pingpong_ns, unpin};
use polytropon_shm::Segment;
use polytropon_smo_copy::{cma_read, copy_raw, copy_raw_prefetching, Method, VectorUnit, AUTO_STREAMING_MIN};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Peer {
    /// SMO prefetching this many steps ahead (the prefetch study).
    SmoAhead(usize),
    Smo,
    Smc,
    Auto,
    Cma,
}

const PEERS: [Peer; 4] = [Peer::Smo, Peer::Smc, Peer::Cma, Peer::Auto];
/// Control block: one flag per slot (at most 64), then the words below.
const CONTROL: usize = 128 * 128;

fn flag(seg: &Segment, i: usize) -> &AtomicU64 {
    // SAFETY: the control block lies within the segment, is 8-byte aligned,
    // and is only ever accessed atomically by both processes.
    unsafe { &*seg.as_ptr().add(i * 128).cast::<AtomicU64>() }
}

fn wait_for(f: &AtomicU64, v: u64) {
    while f.load(Ordering::Acquire) != v {
        std::hint::spin_loop();
    }
}

/// One leg of the pipeline: the peer's copy.
///
/// # Safety
/// As `copy_raw`.
unsafe fn leg(peer: Peer, dst: *mut u8, src: *const u8, len: usize, method: Method) {
    // SAFETY: the caller's contract.
    unsafe {
        match peer {
            Peer::SmoAhead(steps) => copy_raw_prefetching(dst, src, len, steps),
            _ => copy_raw(dst, src, len, method),
        }
    }
}

/// Control-block words, each on its own 128-byte line pair after the slot flags.
const READY_PRODUCER: usize = 64;
const READY_CONSUMER: usize = 65;
const GO: usize = 66;
const SRC_ADDR: usize = 67;
const ELAPSED_NS: usize = 68;

/// Forks a child that runs `f` pinned to `cpu` and exits.
fn spawn(cpu: usize, f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the bench is single-threaded here (pingpong's thread was
    // joined), so the child may allocate and run freely.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        pin(cpu);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: leave without unwinding into the parent's state.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// The bench's children, reaped at most once each.
struct Children(Vec<(libc::pid_t, bool)>);

impl Children {
    /// Waits until `f` holds `v`, checking that no child failed, so that a
    /// failed child stops the bench instead of hanging it. It sleeps between
    /// looks: the machine may have only the two cores the children are
    /// pinned to, and a parent spinning beside them takes one core's time
    /// from a leg of the pipeline (it halved every figure of the trial when
    /// it spun).
    fn wait_for(&mut self, f: &AtomicU64, v: u64) {
        while f.load(Ordering::Acquire) != v {
            std::thread::sleep(std::time::Duration::from_micros(500));
            self.reap(libc::WNOHANG);
        }
    }

    /// Reaps exited children (all of them, blocking, with `flags` 0); a
    /// child that did not exit cleanly kills the others and stops the bench.
    fn reap(&mut self, flags: libc::c_int) {
        for i in 0..self.0.len() {
            let (pid, done) = self.0[i];
            if done {
                continue;
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            if unsafe { libc::waitpid(pid, &mut status, flags) } != pid {
                continue;
            }
            self.0[i].1 = true;
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                for &(other, reaped) in &self.0 {
                    if !reaped {
                        // SAFETY: an unreaped child of ours: its pid cannot
                        // have been reused.
                        unsafe { libc::kill(other, libc::SIGKILL) };
                    }
                }
                panic!("a bench child failed (status {status}); see its message above");
            }
        }
    }
}

/// Touches every page of `[p, p + len)` so that its faults happen before timing.
fn prefault(p: *mut u8, len: usize, write: bool) {
    for off in (0..len).step_by(4096) {
        // SAFETY: the caller passes a mapped range; volatile so the touch is kept.
        unsafe {
            if write {
                std::ptr::write_volatile(p.add(off), 1);
            } else {
                std::ptr::read_volatile(p.add(off));
            }
        }
    }
}

/// One trial: `messages` transfers of `size` bytes through `slots` shared
/// slots. Message i comes from chunk i of a source of `region` bytes
/// (wrapping) and goes to chunk i of a destination as large. Producer and
/// consumer are both fresh children, so each owns its buffers outright (a
/// buffer shared copy-on-write with the parent would make CMA unshare every
/// page on first touch). Returns GB/s delivered.
fn trial(peer: Peer, size: usize, slots: usize, messages: usize, region: usize) -> f64 {
    let chunks = region / size;
    let chunk = |i: usize| (i % chunks) * size;
    let slot_len = size.next_multiple_of(4096);
    let seg = Segment::anonymous(CONTROL + slots * slot_len).unwrap();
    let slot = |i: usize| {
        // SAFETY: slot i % slots lies within the segment.
        unsafe { seg.as_ptr().add(CONTROL + (i % slots) * slot_len) }
    };
    let method = match peer {
        Peer::Smo => Method::Smo,
        Peer::Auto => Method::Auto,
        _ => Method::Smc,
    };
    let producer = spawn(0, || {
        // Let the sibling consumer read our memory (CMA) under Yama's
        // ptrace_scope 1, which only allows ancestors; fails harmlessly
        // where Yama is absent.
        // SAFETY: a plain prctl on this process.
        unsafe { libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0) };
        // Written, not zeroed: vec![0; n] maps untouched pages that would
        // fault inside the timed loop. Page tables of the shared slots are
        // per process, so each child touches them itself.
        let src = vec![0x5Au8; chunks * size];
        prefault(slot(0), slots * slot_len, true);
        flag(&seg, SRC_ADDR).store(src.as_ptr() as u64, Ordering::Relaxed);
        flag(&seg, READY_PRODUCER).store(1, Ordering::Release);
        wait_for(flag(&seg, GO), 1);
        let t0 = Instant::now();
        for i in 0..messages {
            let f = flag(&seg, i % slots);
            wait_for(f, 0);
            if peer != Peer::Cma {
                // SAFETY: the slot is ours while its flag is 0; src is live.
                unsafe { leg(peer, slot(i), src.as_ptr().add(chunk(i)), size, method) };
            }
            f.store(1, Ordering::Release);
        }
        for i in 0..slots {
            wait_for(flag(&seg, i), 0);
        }
        flag(&seg, ELAPSED_NS).store(t0.elapsed().as_nanos() as u64, Ordering::Release);
        flag(&seg, ELAPSED_NS + 1).store(1, Ordering::Release);
    });
    let mut children = Children(vec![(producer, false)]);
    children.wait_for(flag(&seg, READY_PRODUCER), 1);
    let (producer_pid, src_addr) = (producer, flag(&seg, SRC_ADDR).load(Ordering::Relaxed) as usize);
    let consumer = spawn(1, || {
        let mut dst = vec![1u8; chunks * size];
        prefault(slot(0), slots * slot_len, false);
        flag(&seg, READY_CONSUMER).store(1, Ordering::Release);
        for i in 0..messages {
            let f = flag(&seg, i % slots);
            wait_for(f, 1);
            let to = &mut dst[chunk(i)..chunk(i) + size];
            if peer == Peer::Cma {
                cma_read(producer_pid, src_addr + chunk(i), to).unwrap();
            } else {
                // SAFETY: the slot is ours until we clear its flag.
                unsafe { leg(peer, to.as_mut_ptr(), slot(i), size, method) };
            }
            f.store(0, Ordering::Release);
        }
        std::hint::black_box(&dst);
    });
    children.0.push((consumer, false));
    children.wait_for(flag(&seg, READY_CONSUMER), 1);
    flag(&seg, GO).store(1, Ordering::Release);
    children.wait_for(flag(&seg, ELAPSED_NS + 1), 1);
    children.reap(0);
    let secs = flag(&seg, ELAPSED_NS).load(Ordering::Acquire) as f64 / 1e9;
    (size * messages) as f64 / secs / 1e9
}

/// One thread on one core, memcpy of 16 MiB blocks: `cold` walks a 256 MiB
/// source into a 256 MiB destination (data from memory, as in the cold
/// pipeline), otherwise the same block is copied again and again.
fn memcpy_limit(cold: bool, mb: usize) -> f64 {
    const BLOCK: usize = 16 << 20;
    let region = if cold { 256 << 20 } else { BLOCK };
    pin(0);
    let src = vec![0x5Au8; region];
    let mut dst = vec![1u8; region];
    let reps = (mb << 20).div_ceil(BLOCK).max(4);
    let t0 = Instant::now();
    for i in 0..reps {
        let at = (i * BLOCK) % region;
        dst[at..at + BLOCK].copy_from_slice(std::hint::black_box(&src[at..at + BLOCK]));
        std::hint::black_box(&mut dst);
    }
    let gbs = (BLOCK * reps) as f64 / t0.elapsed().as_secs_f64() / 1e9;
    unpin();
    gbs
}

/// What a two-leg pipeline of streaming copies can deliver here: two
/// children, pinned to the pipeline's two cores, each copying 16 MiB blocks
/// from its own 256 MiB source into its own destination with SMO at the same
/// time, as the two legs of a cold trial do, but with no slot between them and
/// no waiting on each other. Returns GB/s per core (the mean of the two): a
/// pipeline moves each message through both legs, so it delivers about this
/// much at best (runs vary by ±10%).
fn stream_ceiling(mb: usize) -> f64 {
    const BLOCK: usize = 16 << 20;
    const REGION: usize = 256 << 20;
    let seg = Segment::anonymous(CONTROL).unwrap();
    let reps = (mb << 20).div_ceil(BLOCK).max(64);
    let mut children = Children(vec![]);
    for cpu in 0..2 {
        let seg = &seg;
        children.0.push((
            spawn(cpu, move || {
                let src = vec![0x5Au8; REGION];
                let mut dst = vec![1u8; REGION];
                flag(seg, cpu).fetch_add(1, Ordering::AcqRel);
                wait_for(flag(seg, GO), 1);
                let t0 = Instant::now();
                for i in 0..reps {
                    let at = (i * BLOCK) % REGION;
                    // SAFETY: both ranges lie within their vectors and are disjoint.
                    unsafe { copy_raw(dst.as_mut_ptr().add(at), src.as_ptr().add(at), BLOCK, Method::Smo) };
                }
                std::hint::black_box(&dst);
                flag(seg, ELAPSED_NS + cpu).store(t0.elapsed().as_nanos() as u64, Ordering::Release);
            }),
            false,
        ));
    }
    children.wait_for(flag(&seg, 0), 1);
    children.wait_for(flag(&seg, 1), 1);
    flag(&seg, GO).store(1, Ordering::Release);
    children.reap(0);
    let rate = |cpu: usize| (BLOCK * reps) as f64 / (flag(&seg, ELAPSED_NS + cpu).load(Ordering::Acquire) as f64 / 1e9) / 1e9;
    (rate(0) + rate(1)) / 2.0
}

fn main() {
    if is_probe() {
        return;
    }
    let rounds: usize = env("SMO_BENCH_ROUNDS", 5);
    let mb: usize = env("SMO_BENCH_MB", 256);
    let sizes: Vec<usize> = std::env::var("SMO_BENCH_SIZES")
        .unwrap_or_else(|_| "4,64,256,1024,4096,16384".into())
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
        .map(|k| k << 10)
        .collect();
    println!("# SMO pipeline: producer cpu0 source -> shm, consumer cpu1 shm -> destination (CMA: one process_vm_readv)");
    println!(
        "# SMO on {}, auto streams from {} KiB; {} interleaved rounds of {} MiB per trial, medians in GB/s; pingpong {:.0} ns before",
        VectorUnit::best().name(),
        AUTO_STREAMING_MIN >> 10,
        rounds,
        mb,
        pingpong_ns()
    );
    let ws: usize = env::<usize>("SMO_BENCH_WS_MB", 256) << 20;
    if let Ok(list) = std::env::var("SMO_BENCH_PREFETCH") {
        // The prefetch study: SMO with several prefetch distances, cold.
        let steps: Vec<usize> = list.split(',').filter_map(|s| s.trim().parse().ok()).collect();
        println!("\n## prefetch distance (steps of 128 bytes ahead), cold; GB/s medians, ratio to 1 step");
        for &size in &sizes {
            let messages = ((mb << 20) / size).max(64);
            let mut gbs: Vec<Vec<f64>> = vec![vec![]; steps.len()];
            for r in 0..rounds {
                for k in 0..steps.len() {
                    let p = (r + k) % steps.len();
                    gbs[p].push(trial(Peer::SmoAhead(steps[p]), size, 2, messages, ws / size * size));
                }
            }
            let base = gbs[0].clone();
            let row: Vec<String> = steps
                .iter()
                .zip(&gbs)
                .map(|(k, g)| format!("{k}: {:.2} ({:.2}x)", median(g.clone()), median(g.iter().zip(&base).map(|(a, b)| a / b).collect())))
                .collect();
            println!("{:>6} KiB  {}", size >> 10, row.join("  "));
        }
        println!("# pingpong {:.0} ns after", pingpong_ns());
        return;
    }
    let mut verdicts = vec![];
    let modes = [
        ("cold", true, false, "every message new data (256 MiB source and destination), 2 shared slots: one client's request buffer"),
        ("ring", true, true, "every message new data, up to 64 slots, 64 MiB of shared memory: many clients' buffers, more than the caches hold"),
        ("hot", false, false, "the same source, slots and destination for every message: all cache-resident below ~8 MiB"),
    ];
    let only = std::env::var("SMO_BENCH_MODES").unwrap_or_else(|_| "cold,ring,hot".into());
    // Ratios are medians of per-round ratios: the peers of one round ran
    // back to back, so the VM's placement changes cancel out of them.
    let paired = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    for (tag, cold, ring, what) in modes.into_iter().filter(|m| only.split(',').any(|o| o == m.0)) {
        println!("\n## {tag}: {what}");
        println!("{:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}", "size", "smo", "smc", "cma", "auto", "smo/smc", "smo/cma", "auto/smc");
        for &size in &sizes {
            // At least 64 messages, so that filling and draining the
            // pipeline (one message's copy each) stays under 2% of a trial.
            let messages = ((mb << 20) / size).max(64);
            let region = if cold { ws / size * size } else { size };
            let slots = if ring { ((64 << 20) / size).clamp(2, 64) } else { 2 };
            let mut gbs: Vec<Vec<f64>> = vec![vec![]; PEERS.len()];
            let mut limits = (vec![], vec![], vec![]);
            for r in 0..rounds {
                for k in 0..PEERS.len() {
                    let p = (r + k) % PEERS.len();
                    gbs[p].push(trial(PEERS[p], size, slots, messages, region));
                }
                if size == 16 << 20 && tag == "cold" {
                    limits.0.push(memcpy_limit(true, mb));
                    limits.1.push(memcpy_limit(false, mb));
                    limits.2.push(stream_ceiling(mb));
                }
            }
            let (smo, smc, cma, auto) = (&gbs[0], &gbs[1], &gbs[2], &gbs[3]);
            let (smo_smc, smo_cma, auto_smc) = (paired(smo, smc), paired(smo, cma), paired(auto, smc));
            println!(
                "{:>6} KiB {:>8.2} {:>8.2} {:>8.2} {:>8.2} {smo_smc:>9.2} {smo_cma:>9.2} {auto_smc:>9.2}",
                size >> 10,
                median(smo.clone()),
                median(smc.clone()),
                median(cma.clone()),
                median(auto.clone()),
            );
            let primary = if tag == "cold" { "" } else { "(not a goal's setting) " };
            if size >= 1 << 20 && cold {
                verdicts.push((format!("{primary}{tag} {} KiB: SMO >= 1.7x SMC ({smo_smc:.2})", size >> 10), smo_smc >= 1.7));
                verdicts.push((format!("{primary}{tag} {} KiB: SMO >= 1.3x CMA ({smo_cma:.2})", size >> 10), smo_cma >= 1.3));
            }
            if size >= AUTO_STREAMING_MIN {
                // Auto streams here: a real comparison. Below, auto runs the
                // very code SMC runs, and a difference is noise.
                verdicts.push((format!("{primary}{tag} {} KiB: auto not slower than SMC ({auto_smc:.2})", size >> 10), auto_smc >= 0.95));
            }
            if size == 16 << 20 && tag == "cold" {
                let (lim, hot, ceiling) = (median(limits.0.clone()), median(limits.1.clone()), median(limits.2.clone()));
                let share = paired(smo, &limits.0);
                println!(
                    "# memory limit: one thread memcpy of 16 MiB blocks, from memory: {lim:.2} GB/s (the same block again and again: {hot:.2}); SMO at 16 MiB is {:.0}% of it",
                    share * 100.0
                );
                println!(
                    "# both cores streaming 16 MiB blocks from memory at once (the two legs with no slot between them): {ceiling:.2} GB/s each; SMO at 16 MiB is {:.0}% of it; SMO at that rate is 1.7x an SMC of {:.2} GB/s",
                    paired(smo, &limits.2) * 100.0,
                    ceiling / 1.7
                );
                verdicts.push((format!("cold 16 MiB: SMO within 25% of the memory limit ({:.0}%)", share * 100.0), share >= 0.75));
            }
        }
    }
    println!("\n# goals");
    for (what, ok) in verdicts {
        println!("{} {what}", if ok { "met    " } else { "NOT met" });
    }
    println!("# pingpong {:.0} ns after", pingpong_ns());
}
