//! Model checking of the slot state machine with loom: every interleaving of
//! small configurations (and, within loom's preemption bound, of the atomics'
//! weak-memory behaviours). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p polytropon-rcqb --test loom --release`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use polytropon_rcqb::{Error, Options, Rcqb};

fn queue(capacity: u32) -> Arc<Rcqb> {
    Arc::new(Rcqb::create(Options { capacity, item_size: 8, name: None, spin_ns: 0 }).unwrap())
}

/// Dequeues until the queue is closed and drained.
fn drain(q: &Rcqb) -> Vec<u64> {
    let mut got = vec![];
    loop {
        match q.dequeue_u64() {
            Ok(v) => got.push(v),
            Err(Error::Closed) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.max_branches = 100_000;
    b.check(f);
}

#[test]
fn one_producer_one_consumer_fifo() {
    model(|| {
        let q = queue(2);
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                for v in 1..=3 {
                    q.enqueue_u64(v).unwrap();
                }
            })
        };
        let got: Vec<u64> = (0..3).map(|_| q.dequeue_u64().unwrap()).collect();
        p.join().unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    });
}

#[test]
fn two_producers_one_slot_no_loss_no_duplicate() {
    model(|| {
        let q = queue(1);
        let ps: Vec<_> = [10u64, 20]
            .into_iter()
            .map(|v| {
                let q = q.clone();
                thread::spawn(move || q.enqueue_u64(v).unwrap())
            })
            .collect();
        let mut got = vec![q.dequeue_u64().unwrap(), q.dequeue_u64().unwrap()];
        for p in ps {
            p.join().unwrap();
        }
        got.sort();
        assert_eq!(got, vec![10, 20]);
    });
}

#[test]
fn two_consumers_share_items_exactly_once() {
    model(|| {
        let q = queue(2);
        let cs: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.dequeue_u64().unwrap())
            })
            .collect();
        q.enqueue_u64(1).unwrap();
        q.enqueue_u64(2).unwrap();
        let mut got: Vec<u64> = cs.into_iter().map(|c| c.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![1, 2]);
    });
}

#[test]
fn try_operations_race_without_loss() {
    model(|| {
        let q = queue(1);
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                while !q.try_enqueue_u64(5).unwrap() {
                    thread::yield_now();
                }
            })
        };
        let v = loop {
            if let Some(v) = q.try_dequeue_u64().unwrap() {
                break v;
            }
            thread::yield_now();
        };
        p.join().unwrap();
        assert_eq!(v, 5);
        assert_eq!(q.try_dequeue_u64().unwrap(), None);
    });
}

#[test]
fn close_lets_a_racing_consumer_drain() {
    model(|| {
        let q = queue(2);
        let c = {
            let q = q.clone();
            thread::spawn(move || drain(&q))
        };
        let acked = q.enqueue_u64(1).is_ok();
        q.close();
        assert!(matches!(q.enqueue_u64(2), Err(Error::Closed)));
        let got = c.join().unwrap();
        assert_eq!(got, if acked { vec![1] } else { vec![] });
    });
}

#[test]
fn enqueue_racing_close_is_either_refused_or_drained() {
    // The producer may pass its closed check, lose the CPU, and take its
    // ticket after close and after the consumer drained: then it must fail,
    // never report success for an item nobody will dequeue.
    model(|| {
        let q = queue(2);
        let p = {
            let q = q.clone();
            thread::spawn(move || q.enqueue_u64(1).is_ok())
        };
        let c = {
            let q = q.clone();
            thread::spawn(move || drain(&q))
        };
        q.close();
        let acked = p.join().unwrap();
        let got = c.join().unwrap();
        assert_eq!(got, if acked { vec![1] } else { vec![] });
    });
}
