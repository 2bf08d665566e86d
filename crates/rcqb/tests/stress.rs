//! Stress tests: many producers and consumers, in threads and in processes,
//! with randomized operation kinds and spin budgets. Each checks that the
//! multiset of dequeued items equals the multiset of acknowledged enqueues.

// Named segments and processes do not exist under loom.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polytropon_rcqb::{Error, Options, Rcqb};

/// Small deterministic PRNG (xorshift64*): the seed is printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("RCQB_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    })
}

/// An item: producer id, sequence number, and a checksum of both spread over
/// the payload so torn or mixed copies are caught.
fn encode(id: u64, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    v[..8].copy_from_slice(&id.to_le_bytes());
    for (i, b) in v[8..].iter_mut().enumerate() {
        *b = (id.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8;
    }
    v
}
fn decode(v: &[u8]) -> u64 {
    let id = u64::from_le_bytes(v[..8].try_into().unwrap());
    assert_eq!(v, encode(id, v.len()).as_slice(), "corrupt item {id}");
    id
}

/// Enqueues with a randomly chosen operation kind until acknowledged.
fn produce(q: &Rcqb, id: u64, size: usize, rng: &mut Rng) {
    let item = encode(id, size);
    loop {
        let r = match rng.below(4) {
            0 => q.enqueue(&item).map(|()| true),
            1 => q.try_enqueue(&item),
            2 => q.enqueue_timeout(&item, Duration::from_micros(rng.below(200))).map(|()| true).or_else(|e| match e {
                Error::Timeout => Ok(false),
                e => Err(e),
            }),
            _ if size == 8 => q.enqueue_u64(id).map(|()| true),
            _ => q.enqueue(&item).map(|()| true),
        };
        if r.unwrap() {
            return;
        }
        std::thread::yield_now();
    }
}

/// Dequeues with a random kind; None once closed and drained.
fn consume(q: &Rcqb, size: usize, rng: &mut Rng) -> Option<u64> {
    let mut buf = vec![0u8; size];
    loop {
        let r = match rng.below(4) {
            0 => q.dequeue_into(&mut buf).map(Some),
            1 => q.try_dequeue_into(&mut buf),
            2 => q.dequeue_into_timeout(&mut buf, Duration::from_micros(rng.below(200))).map(Some).or_else(|e| match e {
                Error::Timeout => Ok(None),
                e => Err(e),
            }),
            _ if size == 8 => match q.dequeue_u64() {
                Ok(v) => return Some(v),
                Err(Error::Closed) => return None,
                Err(e) => panic!("{e}"),
            },
            _ => q.dequeue_into(&mut buf).map(Some),
        };
        match r {
            Ok(Some(n)) => return Some(decode(&buf[..n])),
            Ok(None) => std::thread::yield_now(),
            Err(Error::Closed) => return None,
            Err(e) => panic!("{e}"),
        }
    }
}

fn check_multiset(got: Vec<u64>, expected: impl Iterator<Item = u64>) {
    let mut count: HashMap<u64, i64> = HashMap::new();
    for id in expected {
        *count.entry(id).or_default() += 1;
    }
    for id in &got {
        *count.entry(*id).or_default() -= 1;
    }
    let bad: Vec<_> = count.into_iter().filter(|(_, c)| *c != 0).take(10).collect();
    assert!(bad.is_empty(), "lost (+) or duplicated (-) items: {bad:?}");
}

fn run_threads(producers: u64, consumers: u64, capacity: u32, size: usize, per: u64, spin_ns: u64, seed: u64) {
    let q = Arc::new(Rcqb::create(Options { capacity, item_size: size as u32, name: None, spin_ns }).unwrap());
    let ps: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (p + 1).wrapping_mul(0x9e37_79b9));
                for i in 0..per {
                    produce(&q, (p << 32) | i, size, &mut rng);
                }
            })
        })
        .collect();
    let cs: Vec<_> = (0..consumers)
        .map(|c| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (c + 101).wrapping_mul(0x85eb_ca6b));
                let mut got = vec![];
                while let Some(id) = consume(&q, size, &mut rng) {
                    got.push(id);
                }
                got
            })
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    q.close();
    let got: Vec<u64> = cs.into_iter().flat_map(|c| c.join().unwrap()).collect();
    check_multiset(got, (0..producers).flat_map(|p| (0..per).map(move |i| (p << 32) | i)));
    assert_eq!(q.len(), 0);
}

#[test]
fn threads_many_shapes_randomized() {
    let seed = seed();
    eprintln!("RCQB_SEED={seed}");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rounds = 0;
    for (p, c) in [(1, 1), (2, 2), (4, 1), (1, 4), (8, 8), (16, 3)] {
        for capacity in [1, 2, 8, 64] {
            let size = [8, 24, 200][rng.below(3) as usize];
            // spin 0 forces the futex path; others mix spinning and sleeping.
            let spin = [0, 500, 20_000][rng.below(3) as usize];
            run_threads(p, c, capacity, size, 2_000 / p.max(c) + 50, spin, rng.next());
            rounds += 1;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    assert!(rounds >= 4);
}

#[test]
fn threads_oversubscribed_blocking_u64() {
    // 32 threads on a 2-core machine: producers and consumers must sleep and
    // be woken correctly for the run to finish at all.
    run_threads(16, 16, 16, 8, 3_000, 2_000, seed());
}

// ---- processes ---------------------------------------------------------------

const ROLE: &str = "RCQB_STRESS_ROLE";

/// Entry point of child processes (runs only when spawned with RCQB_STRESS_ROLE).
#[test]
#[ignore = "child-process entry point, run by the process tests"]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let name = std::env::var("RCQB_NAME").unwrap();
    let n: u64 = std::env::var("RCQB_N").unwrap().parse().unwrap();
    let idx: u64 = std::env::var("RCQB_IDX").unwrap().parse().unwrap();
    let q = Rcqb::open(&name, 2_000).unwrap();
    let size = q.item_size() as usize;
    let mut rng = Rng(seed() ^ idx);
    match role.as_str() {
        "produce" => {
            for i in 0..n {
                produce(&q, (idx << 32) | i, size, &mut rng);
            }
        }
        "consume" => {
            let mut out = String::new();
            while let Some(id) = consume(&q, size, &mut rng) {
                out.push_str(&id.to_string());
                out.push('\n');
            }
            println!("BEGIN\n{out}END");
        }
        "churn" => loop {
            // Runs until killed: enqueue, then dequeue, as fast as it can.
            q.enqueue_u64(idx).unwrap();
            let _ = q.dequeue_u64();
        },
        other => panic!("unknown role {other}"),
    }
}

fn child(role: &str, name: &str, idx: u64, n: u64) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_process_entry", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("RCQB_NAME", name)
        .env("RCQB_IDX", idx.to_string())
        .env("RCQB_N", n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    c
}

#[test]
fn processes_three_producers_three_consumers() {
    for (capacity, size) in [(4u32, 8u32), (64, 100)] {
        let name = format!("rcqb-stress-{}-{capacity}", std::process::id());
        let q = Rcqb::create(Options { capacity, item_size: size, name: Some(name.clone()), spin_ns: 2_000 }).unwrap();
        let per = 3_000;
        let consumers: Vec<_> = (0..3).map(|i| child("consume", &name, 100 + i, 0).spawn().unwrap()).collect();
        let producers: Vec<_> = (0..3).map(|i| child("produce", &name, i, per).spawn().unwrap()).collect();
        for p in producers {
            assert!(p.wait_with_output().unwrap().status.success());
        }
        q.close();
        let mut got = vec![];
        for c in consumers {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            let body = text.split("BEGIN\n").nth(1).and_then(|t| t.split("END").next()).expect("consumer output");
            got.extend(body.lines().map(|l| l.parse::<u64>().unwrap()));
        }
        check_multiset(got, (0..3u64).flat_map(|p| (0..per).map(move |i| (p << 32) | i)));
        Rcqb::unlink(&name).unwrap();
    }
}

/// A participant killed with SIGKILL in the middle of its operations. What
/// this test pins down (and the README documents): the survivors never hang
/// when they use timeouts or close; a slot the victim held mid-copy is
/// recovered; every item the survivors enqueued and had acknowledged is
/// dequeued exactly once.
#[test]
fn killed_participant_does_not_hang_the_others() {
    let name = format!("rcqb-kill-{}", std::process::id());
    let q = Rcqb::create(Options { capacity: 4, item_size: 8, name: Some(name.clone()), spin_ns: 2_000 }).unwrap();
    let mut victim = child("churn", &name, 7, 0).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: sending SIGKILL to our own child.
    unsafe { libc_kill(victim.id() as i32, 9) };
    victim.wait().unwrap();

    // Survivors: one producer and one consumer thread, both using timeouts.
    let started = Instant::now();
    let limit = Duration::from_secs(30);
    let q = Arc::new(q);
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut sent = vec![];
            for i in 0..2_000u64 {
                let id = 1_000_000 + i;
                loop {
                    match q.enqueue_u64_timeout(id, Duration::from_millis(50)) {
                        Ok(()) => break,
                        Err(Error::Timeout) => assert!(started.elapsed() < limit, "producer made no progress"),
                        Err(e) => panic!("{e}"),
                    }
                }
                sent.push(id);
            }
            sent
        })
    };
    let consumer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut got = vec![];
            loop {
                match q.dequeue_u64_timeout(Duration::from_millis(20)) {
                    Ok(v) if v >= 1_000_000 => got.push(v),
                    Ok(_) | Err(Error::Timeout) => {} // the victim's leftovers, or nothing yet
                    // Closed and drained: a drain is bounded by the close grace
                    // even where a dead enqueuer's ticket is never matched.
                    Err(Error::Closed) => return got,
                    Err(e) => panic!("{e}"),
                }
                assert!(started.elapsed() < limit * 2, "consumer did not finish");
            }
        })
    };
    let sent = producer.join().unwrap();
    q.close();
    let got = consumer.join().unwrap();
    check_multiset(got, sent.into_iter());
    Rcqb::unlink(&name).unwrap();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
