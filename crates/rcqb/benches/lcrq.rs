//! LCRQ (Morrison & Afek, "Fast concurrent queues for x86 processors",
//! PPoPP 2013), written for the benchmark as a peer of RCQB: a linked list of
//! CRQs, each a ring of 128-bit cells updated with cmpxchg16b (through
//! portable-atomic's AtomicU128). Non-blocking: `dequeue` returns None when
//! empty, and callers spin. Retired rings are freed when the queue is
//! dropped, not earlier (no hazard pointers: enough for a benchmark).

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::SeqCst};

use portable_atomic::AtomicU128;

const RING: u64 = 1024;
const CLOSED: u64 = 1 << 63;
const UNSAFE_MASK: u64 = !(1 << 63);
const EMPTY: u64 = u64::MAX;
/// Failed enqueue attempts on one ring before closing it (the paper's starvation bound).
const STARVATION: u32 = 1 << 12;

#[repr(align(128))]
struct Padded<T>(T);

/// A cell: low 64 bits the value, high 64 bits `safe` (bit 63) and the index.
#[inline]
fn pack(val: u64, safe: bool, idx: u64) -> u128 {
    ((((safe as u64) << 63) | idx) as u128) << 64 | val as u128
}
#[inline]
fn unpack(c: u128) -> (u64, bool, u64) {
    let hi = (c >> 64) as u64;
    (c as u64, hi >> 63 == 1, hi & UNSAFE_MASK)
}

struct Crq {
    head: Padded<AtomicU64>,
    tail: Padded<AtomicU64>,
    next: Padded<AtomicPtr<Crq>>,
    ring: Box<[Padded<AtomicU128>]>,
}

impl Crq {
    fn new() -> Box<Crq> {
        Box::new(Crq {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            next: Padded(AtomicPtr::new(ptr::null_mut())),
            ring: (0..RING).map(|i| Padded(AtomicU128::new(pack(EMPTY, true, i)))).collect(),
        })
    }

    fn enqueue(&self, x: u64) -> bool {
        let mut tries = 0u32;
        loop {
            let t = self.tail.0.fetch_add(1, SeqCst);
            if t & CLOSED != 0 {
                return false;
            }
            let cell = &self.ring[(t % RING) as usize].0;
            let c = cell.load(SeqCst);
            let (val, safe, idx) = unpack(c);
            if val == EMPTY
                && idx <= t
                && (safe || self.head.0.load(SeqCst) <= t)
                && cell.compare_exchange(c, pack(x, true, t), SeqCst, SeqCst).is_ok()
            {
                return true;
            }
            let h = self.head.0.load(SeqCst);
            tries += 1;
            if t.wrapping_sub(h) as i64 >= RING as i64 || tries > STARVATION {
                self.tail.0.fetch_or(CLOSED, SeqCst);
                return false;
            }
        }
    }

    fn dequeue(&self) -> Option<u64> {
        loop {
            let h = self.head.0.fetch_add(1, SeqCst);
            let cell = &self.ring[(h % RING) as usize].0;
            loop {
                let c = cell.load(SeqCst);
                let (val, safe, idx) = unpack(c);
                if idx > h {
                    break;
                }
                if val != EMPTY {
                    if idx == h {
                        if cell.compare_exchange(c, pack(EMPTY, safe, h + RING), SeqCst, SeqCst).is_ok() {
                            return Some(val);
                        }
                    } else if cell.compare_exchange(c, pack(val, false, idx), SeqCst, SeqCst).is_ok() {
                        break;
                    }
                } else if cell.compare_exchange(c, pack(EMPTY, safe, h + RING), SeqCst, SeqCst).is_ok() {
                    break;
                }
            }
            let t = self.tail.0.load(SeqCst) & !CLOSED;
            if t <= h + 1 {
                self.fix_state();
                return None;
            }
        }
    }

    fn fix_state(&self) {
        loop {
            let t = self.tail.0.load(SeqCst);
            let h = self.head.0.load(SeqCst);
            if self.tail.0.load(SeqCst) != t {
                continue;
            }
            if h <= t || self.tail.0.compare_exchange(t, h, SeqCst, SeqCst).is_ok() {
                return;
            }
        }
    }
}

pub struct Lcrq {
    head: Padded<AtomicPtr<Crq>>,
    tail: Padded<AtomicPtr<Crq>>,
    first: *mut Crq,
}

// SAFETY: all shared state is atomics; rings are freed only in Drop.
unsafe impl Send for Lcrq {}
// SAFETY: as above.
unsafe impl Sync for Lcrq {}

impl Default for Lcrq {
    fn default() -> Lcrq {
        Lcrq::new()
    }
}

impl Lcrq {
    pub fn new() -> Lcrq {
        let first = Box::into_raw(Crq::new());
        Lcrq { head: Padded(AtomicPtr::new(first)), tail: Padded(AtomicPtr::new(first)), first }
    }

    pub fn enqueue(&self, x: u64) {
        debug_assert_ne!(x, EMPTY);
        loop {
            let crq_ptr = self.tail.0.load(SeqCst);
            // SAFETY: rings are never freed while the queue lives.
            let crq = unsafe { &*crq_ptr };
            let next = crq.next.0.load(SeqCst);
            if !next.is_null() {
                let _ = self.tail.0.compare_exchange(crq_ptr, next, SeqCst, SeqCst);
                continue;
            }
            if crq.enqueue(x) {
                return;
            }
            let fresh = Crq::new();
            fresh.ring[0].0.store(pack(x, true, 0), SeqCst);
            fresh.tail.0.store(1, SeqCst);
            let fresh = Box::into_raw(fresh);
            if crq.next.0.compare_exchange(ptr::null_mut(), fresh, SeqCst, SeqCst).is_ok() {
                let _ = self.tail.0.compare_exchange(crq_ptr, fresh, SeqCst, SeqCst);
                return;
            }
            // SAFETY: `fresh` was never published.
            drop(unsafe { Box::from_raw(fresh) });
        }
    }

    pub fn dequeue(&self) -> Option<u64> {
        loop {
            let crq_ptr = self.head.0.load(SeqCst);
            // SAFETY: rings are never freed while the queue lives.
            let crq = unsafe { &*crq_ptr };
            if let Some(v) = crq.dequeue() {
                return Some(v);
            }
            let next = crq.next.0.load(SeqCst);
            if next.is_null() {
                return None;
            }
            if let Some(v) = crq.dequeue() {
                return Some(v);
            }
            let _ = self.head.0.compare_exchange(crq_ptr, next, SeqCst, SeqCst);
        }
    }
}

impl Drop for Lcrq {
    fn drop(&mut self) {
        let mut p = self.first;
        while !p.is_null() {
            // SAFETY: every ring was made by Box::into_raw and is freed once here.
            let b = unsafe { Box::from_raw(p) };
            p = b.next.0.load(SeqCst);
        }
    }
}
