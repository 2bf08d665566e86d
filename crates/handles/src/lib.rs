//! Thread-owned handle tables for the Node-API glues' hot paths.
//!
//! A napi-rs class method pays for receiver validation on every call
//! (`napi_unwrap` and a type-tag check): 330-400 ns here, measured, against
//! about 35 ns for a plain exported function. The glues' hot operations (a
//! queue operation, a channel call, a service's take and complete) cost that
//! much or less, so each native object also puts its state in a [`Handles`]
//! table, and JavaScript calls plain functions with the number it got.
//!
//! An entry belongs to the thread that inserted it (a JavaScript thread: the
//! main thread or one worker). Only that thread reaches it ([`Handles::with`])
//! or removes it ([`Handles::remove`]), and a stale, forged or foreign number
//! finds nothing: never freed memory. The owner and generation live in the
//! slot, in one atomic tag, so a thread checking a number never reads an entry
//! that its owner may be freeing. An entry removed while a [`Handles::with`]
//! further up the owner's stack uses it is freed when that `with` returns.
//!
//! A slot's generation is 16 bits and freed slots are reused oldest first: a
//! number kept after its entry was removed could, after `capacity * 65,535`
//! more inserts, name a live entry of the same thread again (never another
//! thread's, never freed memory).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The most slots a table can have: a number is a 16-bit generation above a
/// 16-bit slot index.
pub const MAX_SLOTS: u32 = 1 << 16;

/// A table of values, each reachable by a `u32` from the thread that inserted it.
pub struct Handles<T: Send> {
    capacity: u32,
    /// Allocated on first insert: a static table costs nothing until used.
    inner: OnceLock<Inner<T>>,
}

struct Inner<T> {
    slots: Box<[Slot<T>]>,
    free: Mutex<Free>,
}

struct Slot<T> {
    /// `owner << 16 | generation` while the slot holds an entry, else 0.
    tag: AtomicU64,
    entry: AtomicPtr<Entry<T>>,
}

struct Entry<T> {
    value: T,
    /// Calls of `with` on the owner's stack using this entry.
    borrows: Cell<u32>,
    /// Removed while borrowed: the last `with` frees it.
    removed: Cell<bool>,
}

struct Free {
    /// First in, first out: a slot freed goes to the back, so a number kept
    /// after its entry went meets its generation again only after
    /// `capacity * 65,535` inserts, not 65,535.
    indices: VecDeque<u32>,
    /// Each slot's next generation (1..=65535).
    generations: Vec<u16>,
}

/// The calling thread's owner token (never 0).
fn token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TOKEN: Cell<u64> = const { Cell::new(0) });
    TOKEN.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

impl<T: Send> Handles<T> {
    /// A table of `capacity` slots (at most [`MAX_SLOTS`]); usable in a `static`.
    pub const fn new(capacity: u32) -> Self {
        assert!(capacity >= 1 && capacity <= MAX_SLOTS, "a handle table has 1 to 65536 slots");
        Handles { capacity, inner: OnceLock::new() }
    }

    fn inner(&self) -> &Inner<T> {
        self.inner.get_or_init(|| Inner {
            slots: (0..self.capacity).map(|_| Slot { tag: AtomicU64::new(0), entry: AtomicPtr::new(std::ptr::null_mut()) }).collect(),
            free: Mutex::new(Free { indices: (0..self.capacity).collect(), generations: vec![1; self.capacity as usize] }),
        })
    }

    /// Puts `value` in the table for the calling thread and returns its
    /// number, or gives `value` back when every slot is taken.
    pub fn insert(&self, value: T) -> Result<u32, T> {
        let inner = self.inner();
        let (index, generation) = {
            let mut free = inner.free.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(index) = free.indices.pop_front() else { return Err(value) };
            let g = &mut free.generations[index as usize];
            let generation = *g;
            *g = if *g == u16::MAX { 1 } else { *g + 1 };
            (index, generation)
        };
        let slot = &inner.slots[index as usize];
        let entry = Box::new(Entry { value, borrows: Cell::new(0), removed: Cell::new(false) });
        slot.entry.store(Box::into_raw(entry), Ordering::Release);
        slot.tag.store(token() << 16 | u64::from(generation), Ordering::Release);
        Ok(u32::from(generation) << 16 | index)
    }

    /// The slot and entry `id` names, if it is a live entry of this thread.
    fn find(&self, id: u32) -> Option<(&Slot<T>, *mut Entry<T>)> {
        let slot = self.inner.get()?.slots.get((id & 0xffff) as usize)?;
        // Only the owner changes a tag that holds its token (by removing the
        // entry), and the owner is this thread: a match stays true for as
        // long as this call runs, and so does the entry.
        if slot.tag.load(Ordering::Acquire) != token() << 16 | u64::from(id >> 16) {
            return None;
        }
        let p = slot.entry.load(Ordering::Acquire);
        (!p.is_null()).then_some((slot, p))
    }

    /// Runs `f` on the value `id` names, if it is a live entry of the calling
    /// thread; `None` otherwise (removed, another thread's, never given out).
    pub fn with<R>(&self, id: u32, f: impl FnOnce(&T) -> R) -> Option<R> {
        let (_, p) = self.find(id)?;
        /// Ends the borrow, and frees an entry removed during it.
        struct Borrow<T>(*mut Entry<T>);
        impl<T> Drop for Borrow<T> {
            fn drop(&mut self) {
                // SAFETY: the entry is alive while borrowed: `remove` defers
                // the free to the last borrow, which is this one if the count
                // drops to 0 here; only the owner thread (this one) touches it.
                let e = unsafe { &*self.0 };
                e.borrows.set(e.borrows.get() - 1);
                if e.borrows.get() == 0 && e.removed.get() {
                    // SAFETY: from Box::into_raw in `insert`; out of the
                    // table since `remove`, and this was its last borrow.
                    drop(unsafe { Box::from_raw(self.0) });
                }
            }
        }
        // SAFETY: `find` checked that the entry is this thread's and live;
        // only this thread can free it, and not while borrowed.
        let e = unsafe { &*p };
        e.borrows.set(e.borrows.get() + 1);
        let _borrow = Borrow(p);
        Some(f(&e.value))
    }

    /// Removes the entry `id` names and drops its value (after the last
    /// `with` using it returns, if one does). False unless it is a live entry
    /// of the calling thread: only the owner removes.
    pub fn remove(&self, id: u32) -> bool {
        let Some((slot, p)) = self.find(id) else { return false };
        slot.tag.store(0, Ordering::Release);
        slot.entry.store(std::ptr::null_mut(), Ordering::Release);
        // The slot is free from here on (before the value's drop, which may panic).
        let inner = self.inner.get().expect("found an entry, so the table exists");
        inner.free.lock().unwrap_or_else(PoisonError::into_inner).indices.push_back(id & 0xffff);
        // SAFETY: as in `with`: this thread's live entry, now out of the table.
        let e = unsafe { &*p };
        if e.borrows.get() == 0 {
            // SAFETY: from Box::into_raw in `insert`, out of the table, unborrowed.
            drop(unsafe { Box::from_raw(p) });
        } else {
            e.removed.set(true);
        }
        true
    }

    /// Entries in the table, of every thread.
    pub fn len(&self) -> usize {
        self.inner.get().map_or(0, |i| self.capacity as usize - i.free.lock().unwrap_or_else(PoisonError::into_inner).indices.len())
    }

    /// True when the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send> Drop for Handles<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.get_mut() {
            for slot in inner.slots.iter_mut() {
                let p = *slot.entry.get_mut();
                if !p.is_null() {
                    // SAFETY: the table is going away (`&mut self`: no `with`
                    // runs); entries left in it were never freed.
                    drop(unsafe { Box::from_raw(p) });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Counts its drops.
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>, u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_entry_is_reached_by_its_number_until_removed() {
        let t = Handles::new(8);
        let a = t.insert(10u64).unwrap();
        let b = t.insert(20u64).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.with(a, |v| *v), Some(10));
        assert_eq!(t.with(b, |v| *v), Some(20));
        assert_eq!(t.len(), 2);
        assert!(t.remove(a));
        assert!(!t.remove(a), "a second remove finds nothing");
        assert_eq!(t.with(a, |v| *v), None);
        assert_eq!(t.with(b, |v| *v), Some(20));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn freed_slots_are_reused_oldest_first() {
        let t = Handles::new(8);
        let stale = t.insert(0u32).unwrap();
        assert!(t.remove(stale));
        // Make and drop entries one at a time, as a loop of short-lived
        // objects does: the stale number finds nothing for a long while.
        for i in 1..=8 * 1000 {
            let id = t.insert(i).unwrap();
            assert_eq!(t.with(stale, |v| *v), None, "after {i} inserts");
            assert!(t.remove(id));
        }
    }

    #[test]
    fn a_reused_slot_does_not_answer_to_the_old_number() {
        let t = Handles::new(1);
        let a = t.insert(1u8).unwrap();
        assert!(t.remove(a));
        let b = t.insert(2u8).unwrap();
        assert_eq!(a & 0xffff, b & 0xffff, "one slot, reused");
        assert_ne!(a, b);
        assert_eq!(t.with(a, |v| *v), None);
        assert_eq!(t.with(b, |v| *v), Some(2));
        assert!(!t.remove(a));
        assert_eq!(t.with(b, |v| *v), Some(2), "the stale number removed nothing");
    }

    #[test]
    fn numbers_never_given_out_find_nothing() {
        let empty: Handles<u8> = Handles::new(4);
        assert_eq!(empty.with(0, |v| *v), None, "no table yet");
        let t = Handles::new(4);
        let a = t.insert(7u8).unwrap();
        for id in [0, a & 0xffff, 3, 4, 0xffff, 0x1_0003, u32::MAX, a ^ 0x8000_0000] {
            assert_eq!(t.with(id, |v| *v), None, "id {id:#x}");
            assert!(!t.remove(id));
        }
        assert_eq!(t.with(a, |v| *v), Some(7));
    }

    #[test]
    fn a_full_table_gives_the_value_back() {
        let t = Handles::new(2);
        t.insert(1u8).unwrap();
        let b = t.insert(2u8).unwrap();
        assert_eq!(t.insert(3u8), Err(3));
        t.remove(b);
        assert!(t.insert(4u8).is_ok());
    }

    #[test]
    fn another_thread_can_neither_reach_nor_remove_an_entry() {
        let t = Arc::new(Handles::new(8));
        let a = t.insert(5u32).unwrap();
        let t2 = t.clone();
        let (seen, removed, own) = std::thread::spawn(move || {
            let own = t2.insert(6u32).unwrap();
            (t2.with(a, |v| *v), t2.remove(a), own)
        })
        .join()
        .unwrap();
        assert_eq!((seen, removed), (None, false));
        assert_eq!(t.with(a, |v| *v), Some(5));
        assert_eq!(t.with(own, |v| *v), None, "the other thread's entry is not this thread's");
        assert!(!t.remove(own));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn removing_an_entry_in_use_frees_it_when_the_use_ends() {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Handles::new(4);
        let a = t.insert(Counted(drops.clone(), 9)).unwrap();
        let seen = t.with(a, |v| {
            let inner = t.with(a, |w| {
                assert!(t.remove(a), "the owner removes it from inside");
                assert_eq!(drops.load(Ordering::SeqCst), 0, "still borrowed twice");
                w.1
            });
            assert_eq!(inner, Some(9));
            assert_eq!(drops.load(Ordering::SeqCst), 0, "still borrowed once");
            assert_eq!(t.with(a, |_| ()), None, "out of the table already");
            v.1
        });
        assert_eq!(seen, Some(9));
        assert_eq!(drops.load(Ordering::SeqCst), 1, "freed once, when the last use ended");
        assert!(t.is_empty());
    }

    #[test]
    fn a_panic_inside_with_still_ends_the_borrow() {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Handles::new(4);
        let a = t.insert(Counted(drops.clone(), 1)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.with(a, |_| {
                t.remove(a);
                panic!("in the middle");
            })
        }));
        assert!(r.is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn dropping_the_table_drops_what_is_left() {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Handles::new(8);
        for i in 0..5 {
            t.insert(Counted(drops.clone(), i)).unwrap();
        }
        let a = t.insert(Counted(drops.clone(), 5)).unwrap();
        t.remove(a);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(t);
        assert_eq!(drops.load(Ordering::SeqCst), 6);
    }

    /// Threads insert, use and remove entries at random while probing every
    /// number of the table: each sees its own entries with its own values,
    /// never another thread's, and every value is dropped exactly once.
    #[test]
    fn many_threads_churn_and_probe() {
        const THREADS: u64 = 8;
        const ROUNDS: u64 = 20_000;
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Arc::new(Handles::new(64));
        let inserted = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..THREADS)
            .map(|me| {
                let (t, drops, inserted) = (t.clone(), drops.clone(), inserted.clone());
                std::thread::spawn(move || {
                    let mut rng = me.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                    let mut next = || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let mut mine: Vec<(u32, u64)> = Vec::new();
                    for round in 0..ROUNDS {
                        match next() % 4 {
                            0 if mine.len() < 6 => {
                                let tagged = me << 32 | round;
                                if let Ok(id) = t.insert(Counted(drops.clone(), tagged)) {
                                    inserted.fetch_add(1, Ordering::SeqCst);
                                    mine.push((id, tagged));
                                }
                            }
                            1 if !mine.is_empty() => {
                                let (id, _) = mine.swap_remove((next() % mine.len() as u64) as usize);
                                assert!(t.remove(id));
                            }
                            _ => {
                                for &(id, tagged) in &mine {
                                    assert_eq!(t.with(id, |v| v.1), Some(tagged));
                                }
                                // A random number: this thread's own entry or nothing.
                                let probe = ((next() % 4 + 1) as u32 * 0x1_0000) | (next() % 64) as u32;
                                if let Some(v) = t.with(probe, |v| v.1) {
                                    assert_eq!(v >> 32, me, "reached another thread's entry");
                                }
                            }
                        }
                    }
                    for (id, _) in mine {
                        assert!(t.remove(id));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert!(t.is_empty());
        assert_eq!(drops.load(Ordering::SeqCst), inserted.load(Ordering::SeqCst));
    }
}
