use super::*;
use std::sync::Arc;

fn queue(capacity: u32, item_size: u32) -> Rcqb {
    Rcqb::create(Options { capacity, item_size, ..Options::default() }).unwrap()
}

#[test]
fn single_thread_is_fifo_and_round_trips_bytes() {
    let q = queue(8, 32);
    for i in 0..8u8 {
        q.enqueue(&[i; 5][..(i as usize % 5) + 1]).unwrap();
    }
    assert_eq!(q.len(), 8);
    let mut buf = [0u8; 32];
    for i in 0..8u8 {
        let n = q.dequeue_into(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 5][..(i as usize % 5) + 1]);
    }
    assert!(q.is_empty());
}

#[test]
fn try_operations_never_consume_tickets_they_cannot_use() {
    let q = queue(2, 8);
    assert_eq!(q.try_dequeue_u64().unwrap(), None);
    assert_eq!(q.stats().dequeue_tickets, 0);
    assert!(q.try_enqueue_u64(1).unwrap());
    assert!(q.try_enqueue_u64(2).unwrap());
    assert!(!q.try_enqueue_u64(3).unwrap());
    assert_eq!(q.stats().enqueue_tickets, 2);
    assert_eq!(q.try_dequeue_u64().unwrap(), Some(1));
    assert_eq!(q.try_dequeue_u64().unwrap(), Some(2));
    assert_eq!(q.try_dequeue_u64().unwrap(), None);
    assert_eq!(q.stats().dequeue_tickets, 2);
}

#[test]
fn timeouts_hand_their_ticket_back_and_lose_nothing() {
    let q = queue(4, 8);
    let t0 = Instant::now();
    assert!(matches!(q.dequeue_u64_timeout(Duration::from_millis(20)), Err(Error::Timeout)));
    assert!(t0.elapsed() >= Duration::from_millis(20));
    // The cancelled dequeue does not swallow the next item.
    q.enqueue_u64(9).unwrap();
    assert_eq!(q.dequeue_u64_timeout(Duration::from_secs(5)).unwrap(), 9);
    for i in 0..4 {
        q.enqueue_u64(i).unwrap();
    }
    assert!(matches!(q.enqueue_u64_timeout(99, Duration::from_millis(10)), Err(Error::Timeout)));
    for i in 0..4 {
        assert_eq!(q.dequeue_u64().unwrap(), i);
    }
    assert_eq!(q.try_dequeue_u64().unwrap(), None);
}

#[test]
fn credits_left_by_many_timed_out_dequeuers_redirect_enqueuers() {
    // Several consumers time out at once, so most cannot hand their ticket
    // back and leave credits; every later item must still reach a consumer.
    let q = Arc::new(queue(2, 8));
    let hs: Vec<_> = (0..6)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || q.dequeue_u64_timeout(Duration::from_millis(30)))
        })
        .collect();
    for h in hs {
        assert!(matches!(h.join().unwrap(), Err(Error::Timeout)));
    }
    for i in 0..10 {
        q.enqueue_u64(i).unwrap();
        assert_eq!(q.dequeue_u64_timeout(Duration::from_secs(5)).unwrap(), i);
    }
}

#[test]
fn item_too_large_and_small_buffers_are_errors() {
    let q = queue(4, 16);
    assert!(matches!(q.enqueue(&[0; 17]), Err(Error::TooLarge { len: 17, max: 16 })));
    let mut small = [0u8; 8];
    assert!(matches!(q.dequeue_into(&mut small), Err(Error::InvalidArgument(_))));
    let tiny = queue(4, 4);
    assert!(matches!(tiny.enqueue_u64(1), Err(Error::TooLarge { .. })));
}

#[test]
fn bad_geometry_is_rejected() {
    for (c, s) in [(0, 8), (3, 8), (1 << 25, 8), (8, 0), (8, MAX_ITEM + 1)] {
        assert!(matches!(Rcqb::create(Options { capacity: c, item_size: s, ..Options::default() }), Err(Error::InvalidArgument(_))), "{c} {s}");
    }
}
const MAX_ITEM: u32 = crate::MAX_ITEM_SIZE;

#[test]
fn close_wakes_blocked_consumers_and_lets_them_drain() {
    let q = Arc::new(queue(8, 8));
    q.enqueue_u64(1).unwrap();
    q.enqueue_u64(2).unwrap();
    let consumer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut got = vec![];
            loop {
                match q.dequeue_u64() {
                    Ok(v) => got.push(v),
                    Err(Error::Closed) => return got,
                    Err(e) => panic!("{e}"),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50)); // let it block on the empty queue
    q.close();
    assert_eq!(consumer.join().unwrap(), vec![1, 2]);
    assert!(matches!(q.enqueue_u64(3), Err(Error::Closed)));
    assert!(matches!(q.try_dequeue_u64(), Err(Error::Closed)));
}

#[test]
fn close_wakes_blocked_producers() {
    let q = Arc::new(queue(1, 8));
    q.enqueue_u64(1).unwrap();
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || q.enqueue_u64(2))
    };
    std::thread::sleep(Duration::from_millis(50));
    q.close();
    assert!(matches!(producer.join().unwrap(), Err(Error::Closed)));
    assert_eq!(q.dequeue_u64().unwrap(), 1);
    assert!(matches!(q.dequeue_u64(), Err(Error::Closed)));
}

#[test]
fn blocked_consumer_sleeps_and_is_woken() {
    let q = Arc::new(Rcqb::create(Options { capacity: 4, item_size: 8, spin_ns: 1_000, ..Options::default() }).unwrap());
    let c = {
        let q = q.clone();
        std::thread::spawn(move || q.dequeue_u64())
    };
    std::thread::sleep(Duration::from_millis(50));
    q.enqueue_u64(77).unwrap();
    assert_eq!(c.join().unwrap().unwrap(), 77);
    assert!(q.stats().sleeps >= 1);
}

#[test]
fn named_queue_is_shared_and_validated() {
    let name = format!("rcqb-unit-{}", std::process::id());
    let a = Rcqb::create(Options { capacity: 16, item_size: 64, name: Some(name.clone()), ..Options::default() }).unwrap();
    let b = Rcqb::open(&name, DEFAULT_SPIN_NS).unwrap();
    assert_eq!((b.capacity(), b.item_size()), (16, 64));
    a.enqueue(b"hello").unwrap();
    let mut buf = [0u8; 64];
    let n = b.dequeue_into(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert!(matches!(Rcqb::create(Options { capacity: 16, item_size: 64, name: Some(name.clone()), ..Options::default() }), Err(Error::Exists(_))));
    Rcqb::unlink(&name).unwrap();
    assert!(matches!(Rcqb::open(&name, 0), Err(Error::NotFound(_))));
    // Handles keep working after unlink.
    b.enqueue(b"x").unwrap();
    assert_eq!(a.dequeue_into(&mut buf).unwrap(), 1);
}

#[test]
fn hostile_headers_are_rejected_without_crashing() {
    // Random and targeted corruptions of a valid header must all fail
    // validation with BadLayout (or, if untouched fields, succeed) and never
    // lead to an out-of-bounds mapping.
    let name = format!("rcqb-hostile-{}", std::process::id());
    let q = Rcqb::create(Options { capacity: 8, item_size: 8, name: Some(name.clone()), ..Options::default() }).unwrap();
    let base = q.storage.seg.as_ptr();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let original: Vec<u8> = (0..32).map(|i| unsafe { base.add(i).read() }).collect();
    for round in 0..2000 {
        // SAFETY: we scribble only over the first 32 bytes of our own 256-byte header.
        unsafe {
            for (i, b) in original.iter().enumerate() {
                base.add(i).write(*b);
            }
            let n = 1 + next() % 4;
            for _ in 0..n {
                let off = (next() % 32) as usize;
                base.add(off).write(next() as u8);
            }
        }
        match Rcqb::open(&name, 0) {
            // A corruption can still describe a consistent geometry (say item
            // size 44 in the same 64-byte stride); it must fit the mapping.
            Ok(o) => assert!(o.geo.total_size <= q.geo.total_size, "round {round}: {:?}", o.geo),
            Err(Error::BadLayout(_)) => {}
            Err(e) => panic!("round {round}: unexpected {e}"),
        }
    }
    Rcqb::unlink(&name).unwrap();
}

#[test]
fn corrupt_item_length_is_reported_not_read_out_of_bounds() {
    let q = queue(4, 8);
    q.enqueue_u64(5).unwrap();
    q.slot(0).len.store(1 << 20, Relaxed);
    assert!(matches!(q.dequeue_u64(), Err(Error::BadLayout(_))));
    q.enqueue_u64(6).unwrap();
    assert_eq!(q.dequeue_u64().unwrap(), 6);
}

#[test]
fn slot_held_by_a_dead_process_is_recovered() {
    // Simulate a writer that died mid-deposit: slot 0 in WRITING, owned by a
    // pid that no longer exists.
    let q = queue(4, 8);
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    q.header().tail.store(1, SeqCst); // the dead writer's ticket 0
    q.slot(0).state.store(WRITING | (dead as u64) << HOLDER_SHIFT, SeqCst);
    // The consumer with ticket 0 must not hang: it recovers the slot, takes a
    // new ticket and gets the next real item.
    let t = std::thread::scope(|s| {
        let h = s.spawn(|| q.dequeue_u64_timeout(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(30));
        q.enqueue_u64(42).unwrap();
        h.join().unwrap()
    });
    assert_eq!(t.unwrap(), 42);
    assert_eq!(q.stats().recoveries, 1);
}

#[test]
fn timed_consumers_on_an_idle_queue_do_not_pile_up_credits() {
    // Two consumers polling with short timeouts on an idle queue: their
    // cancelled tickets must mostly pair off (hand-back or a null pair with
    // the tail), not leave a credit per round until a slot saturates.
    let q = Arc::new(queue(2, 8));
    let rounds = 300;
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                for _ in 0..rounds {
                    assert!(matches!(q.dequeue_u64_timeout(Duration::from_micros(300)), Err(Error::Timeout)));
                }
            });
        }
    });
    let credits: u32 = (0..2).map(|i| deq_credits(q.slot(i).state.load(SeqCst))).sum();
    assert!(credits < rounds / 10, "{credits} dequeue credits left after {rounds} rounds");
    // And the queue still works, in order.
    for i in 0..4 {
        q.enqueue_u64(i).unwrap();
        assert_eq!(q.dequeue_u64_timeout(Duration::from_secs(5)).unwrap(), i);
    }
}

#[test]
fn a_holder_presumed_dead_does_not_corrupt_the_slot() {
    // Another participant recovered our slot while we were (slowly) writing:
    // our release must leave it alone and report the enqueue as failed.
    let q = queue(2, 8);
    let slot = q.slot(0);
    slot.state.store(WRITING | q.holder, SeqCst);
    // Recovery as another participant would do it: FREE plus an enqueue credit.
    slot.state.store(ENQ_ONE, SeqCst);
    assert!(!q.release(slot, WRITING, FULL));
    assert_eq!(slot.state.load(SeqCst), ENQ_ONE);
}

#[test]
fn a_bounded_try_returns_whatever_the_memory_holds() {
    // Garbage that makes a plain try wait: slot 0 marked mid-deposit by a
    // process that is alive (this test's parent, pid 1 or not: any live one)
    // and never finishes.
    let q = queue(4, 8);
    let alive = std::os::unix::process::parent_id();
    q.header().tail.store(1, SeqCst);
    q.slot(0).state.store(WRITING | (alive as u64) << HOLDER_SHIFT, SeqCst);
    let t0 = Instant::now();
    assert_eq!(q.try_dequeue_u64_within(Duration::from_millis(20)).unwrap(), None);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "the bounded try took {took:?}");
    // Garbage in the closed word with a slot still "in flight": the drain
    // would wait for it; the bounded try does not.
    q.header().closed.store(1, SeqCst);
    let t0 = Instant::now();
    assert!(matches!(q.try_dequeue_u64_within(Duration::from_millis(20)), Ok(None) | Err(_)));
    assert!(t0.elapsed() < Duration::from_secs(1));
}
