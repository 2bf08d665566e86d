//! Closed-system benchmark, as in the RCQB paper: each thread repeatedly
//! enqueues an item, then dequeues one. For 1..32 threads on this machine it
//! measures average and p99 enqueue latency and total throughput of RCQB and
//! the queues a user would pick instead, run interleaved (A B C .. C B A ..)
//! in one process, and prints medians over rounds and ratios against RCQB.
//!
//! `cargo bench -p polytropon-rcqb --bench closed_system`
//! Env: RCQB_BENCH_MS (per run, default 300), RCQB_BENCH_ROUNDS (default 3),
//! RCQB_BENCH_THREADS (comma list, default 1,2,4,8,16,32).

#[path = "lcrq.rs"]
mod lcrq;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use polytropon_rcqb::{Options, Rcqb};
use polytropon_bench_support::{env, is_probe, median, pingpong_ns};

const CAPACITY: usize = 1024;

trait Peer: Send + Sync {
    fn enqueue(&self, v: u64);
    fn dequeue(&self) -> u64;
    /// Futex sleeps and slow-path waits so far, where the queue counts them.
    fn sleeps_and_waits(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Spin politely: on 2 cores with 32 threads, a spinner that never yields
/// starves the thread it waits for.
fn spin_until<T>(mut attempt: impl FnMut() -> Option<T>) -> T {
    let mut n = 0u32;
    loop {
        if let Some(v) = attempt() {
            return v;
        }
        n += 1;
        if n % 64 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

struct RcqbPeer(Rcqb);
impl Peer for RcqbPeer {
    fn enqueue(&self, v: u64) {
        self.0.enqueue_u64(v).unwrap()
    }
    fn dequeue(&self) -> u64 {
        self.0.dequeue_u64().unwrap()
    }
    fn sleeps_and_waits(&self) -> Option<(u64, u64)> {
        let s = self.0.stats();
        Some((s.sleeps, s.waits))
    }
}

struct ArrayQueuePeer(ArrayQueue<u64>);
impl Peer for ArrayQueuePeer {
    fn enqueue(&self, v: u64) {
        spin_until(|| self.0.push(v).ok())
    }
    fn dequeue(&self) -> u64 {
        spin_until(|| self.0.pop())
    }
}

struct MutexCondvarPeer {
    q: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
}
impl Peer for MutexCondvarPeer {
    fn enqueue(&self, v: u64) {
        let mut q = self.q.lock().unwrap();
        while q.len() >= CAPACITY {
            q = self.not_full.wait(q).unwrap();
        }
        q.push_back(v);
        drop(q);
        self.not_empty.notify_one();
    }
    fn dequeue(&self) -> u64 {
        let mut q = self.q.lock().unwrap();
        loop {
            if let Some(v) = q.pop_front() {
                drop(q);
                self.not_full.notify_one();
                return v;
            }
            q = self.not_empty.wait(q).unwrap();
        }
    }
}

/// `std::sync::mpsc` has a single receiver; sharing it needs a Mutex.
struct SyncChannelPeer {
    tx: mpsc::SyncSender<u64>,
    rx: Mutex<mpsc::Receiver<u64>>,
}
impl Peer for SyncChannelPeer {
    fn enqueue(&self, v: u64) {
        self.tx.send(v).unwrap()
    }
    fn dequeue(&self) -> u64 {
        self.rx.lock().unwrap().recv().unwrap()
    }
}

struct LcrqPeer(lcrq::Lcrq);
impl Peer for LcrqPeer {
    fn enqueue(&self, v: u64) {
        self.0.enqueue(v)
    }
    fn dequeue(&self) -> u64 {
        spin_until(|| self.0.dequeue())
    }
}

const PEERS: [&str; 5] = ["rcqb", "lcrq", "crossbeam ArrayQueue", "Mutex<VecDeque>+Condvar", "mpsc::sync_channel"];

fn make(name: &str) -> Arc<dyn Peer> {
    match name {
        "rcqb" => Arc::new(RcqbPeer(
            Rcqb::create(Options { capacity: CAPACITY as u32, item_size: 8, spin_ns: env("RCQB_BENCH_SPIN_NS", polytropon_rcqb::DEFAULT_SPIN_NS), ..Options::default() }).unwrap(),
        )),
        "lcrq" => Arc::new(LcrqPeer(lcrq::Lcrq::new())),
        "crossbeam ArrayQueue" => Arc::new(ArrayQueuePeer(ArrayQueue::new(CAPACITY))),
        "Mutex<VecDeque>+Condvar" => Arc::new(MutexCondvarPeer {
            q: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }),
        "mpsc::sync_channel" => {
            let (tx, rx) = mpsc::sync_channel(CAPACITY);
            Arc::new(SyncChannelPeer { tx, rx: Mutex::new(rx) })
        }
        _ => unreachable!(),
    }
}

#[derive(Clone, Copy, Default)]
struct Run {
    avg_ns: f64,
    p99_ns: f64,
    mops: f64,
    /// Futex sleeps and waits per 1000 operations (RCQB only).
    sleeps_per_k: f64,
    waits_per_k: f64,
}

fn run(peer: Arc<dyn Peer>, threads: usize, dur: Duration) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let pairs = Arc::new(AtomicU64::new(0));
    let start_gate = Arc::new(std::sync::Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (peer, stop, pairs, gate) = (peer.clone(), stop.clone(), pairs.clone(), start_gate.clone());
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                gate.wait();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    peer.enqueue((t as u64) << 40 | i);
                    lat.push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    std::hint::black_box(peer.dequeue());
                    i += 1;
                }
                pairs.fetch_add(i, Ordering::Relaxed);
                lat
            })
        })
        .collect();
    start_gate.wait();
    let t0 = Instant::now();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    let n = lat.len().max(1);
    let ops = 2.0 * pairs.load(Ordering::Relaxed) as f64;
    let (sleeps, waits) = peer.sleeps_and_waits().unwrap_or((0, 0));
    Run {
        avg_ns: lat.iter().map(|&x| x as f64).sum::<f64>() / n as f64,
        p99_ns: lat.get(n * 99 / 100).copied().unwrap_or(0) as f64,
        mops: ops / secs / 1e6,
        sleeps_per_k: sleeps as f64 * 1000.0 / ops.max(1.0),
        waits_per_k: waits as f64 * 1000.0 / ops.max(1.0),
    }
}

fn main() {
    if is_probe() {
        return; // `cargo test --benches` probes; nothing to run
    }
    let dur = Duration::from_millis(env("RCQB_BENCH_MS", 300));
    let rounds: usize = env("RCQB_BENCH_ROUNDS", 3);
    let threads: Vec<usize> = std::env::var("RCQB_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2,4,8,16,32".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("# RCQB closed-system benchmark: each thread enqueues then dequeues");
    println!("# {} cpus, {} ms per run, {} interleaved rounds, medians; pingpong {:.0} ns before", 
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), dur.as_millis(), rounds, pingpong_ns());
    let mut verdicts = vec![];
    for &t in &threads {
        let mut results: Vec<Vec<Run>> = vec![vec![]; PEERS.len()];
        for r in 0..rounds {
            let order: Vec<usize> = if r % 2 == 0 { (0..PEERS.len()).collect() } else { (0..PEERS.len()).rev().collect() };
            for i in order {
                results[i].push(run(make(PEERS[i]), t, dur));
            }
        }
        let med: Vec<Run> = results
            .iter()
            .map(|rs| Run {
                avg_ns: median(rs.iter().map(|r| r.avg_ns).collect()),
                p99_ns: median(rs.iter().map(|r| r.p99_ns).collect()),
                mops: median(rs.iter().map(|r| r.mops).collect()),
                sleeps_per_k: median(rs.iter().map(|r| r.sleeps_per_k).collect()),
                waits_per_k: median(rs.iter().map(|r| r.waits_per_k).collect()),
            })
            .collect();
        let base = med[0];
        println!("\n## {t} thread{}", if t == 1 { "" } else { "s" });
        println!("| queue | avg enqueue | p99 enqueue | throughput | avg latency vs rcqb | rcqb throughput vs it |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (i, m) in med.iter().enumerate() {
            println!(
                "| {} | {:.0} ns | {:.0} ns | {:.2} Mops/s | {:.2}x | {:.2}x |",
                PEERS[i], m.avg_ns, m.p99_ns, m.mops, m.avg_ns / base.avg_ns, base.mops / m.mops
            );
        }
        println!(
            "\nrcqb slow paths per 1000 operations: {:.1} waits, {:.1} futex sleeps",
            base.waits_per_k, base.sleeps_per_k
        );
        let best_other_lat = med[1..].iter().map(|m| m.avg_ns).fold(f64::INFINITY, f64::min);
        let best_other_tput = med[1..].iter().map(|m| m.mops).fold(0.0, f64::max);
        if t >= 4 {
            verdicts.push(format!(
                "{t} threads: rcqb avg enqueue {:.0} ns, best peer {:.0} ns -> {}",
                base.avg_ns,
                best_other_lat,
                if base.avg_ns <= best_other_lat { "lowest (goal met)" } else { "NOT lowest" }
            ));
        }
        if t == 2 {
            verdicts.push(format!(
                "2 threads: rcqb throughput {:.2} Mops/s = {:.0}% of the best peer's {:.2} (goal >= 80%)",
                base.mops,
                100.0 * base.mops / best_other_tput,
                best_other_tput
            ));
        }
    }
    println!("\n# pingpong {:.0} ns after", pingpong_ns());
    println!("\n# goals");
    for v in verdicts {
        println!("- {v}");
    }
}
