//! The hot path as plain functions over a handle id.
//!
//! A napi-rs class method pays for receiver validation on every call (a
//! type-tag check under Node-API 8, a process-wide mutex below it): about
//! 300 ns here, measured, against about 35 ns for a plain function. A queue
//! operation is a few tens of nanoseconds, so each `NativeQueue` also
//! registers its queue in a table, and the JS layer calls these functions
//! with the id.
//!
//! Safety of the table: an entry is owned by the JS thread that created the
//! `NativeQueue` (each worker attaches its own), only that thread may use its
//! id, and it is removed by that object's finalizer, which runs on the same
//! thread. So no call can race with the removal of the entry it uses; a stale
//! or forged id finds an empty slot, another generation or another owner,
//! and gets an error, never freed memory.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use napi::bindgen_prelude::Uint8Array;
use napi::{Error, Result, Status};
use napi_derive::napi;
use polytropon_rcqb::Rcqb;

use crate::{ms, to_napi};

const SLOTS: usize = 1 << 16;

struct Entry {
    queue: Arc<Rcqb>,
    generation: u32,
    owner: u64,
}

struct Table {
    slots: Box<[AtomicPtr<Entry>]>,
    /// Free slot indices and each slot's next generation.
    free: Mutex<(Vec<u32>, Vec<u32>)>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| Table {
        slots: (0..SLOTS).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
        free: Mutex::new(((0..SLOTS as u32).rev().collect(), vec![1; SLOTS])),
    })
}

fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TOKEN: Cell<u64> = const { Cell::new(0) });
    TOKEN.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// Registers `queue` for the calling thread; returns its id.
pub(crate) fn register(queue: Arc<Rcqb>) -> Result<u32> {
    let t = table();
    let (index, generation) = {
        let mut free = t.free.lock().unwrap();
        let Some(index) = free.0.pop() else {
            return Err(Error::new(Status::GenericFailure, "ERR_RCQB_IO: more than 65536 queue handles open in this process".to_string()));
        };
        let g = free.1[index as usize];
        free.1[index as usize] = if g == u16::MAX as u32 { 1 } else { g + 1 };
        (index, g)
    };
    let entry = Box::new(Entry { queue, generation, owner: thread_token() });
    t.slots[index as usize].store(Box::into_raw(entry), Ordering::Release);
    Ok(generation << 16 | index)
}

/// Removes an entry; called from the owning object's finalizer (same thread).
pub(crate) fn unregister(id: u32) {
    let t = table();
    let index = (id & 0xffff) as usize;
    let p = t.slots[index].swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: the pointer came from Box::into_raw in `register` and was
        // just taken out of the table, so it is freed exactly once; only this
        // thread could be using it (see the module comment) and it is not.
        drop(unsafe { Box::from_raw(p) });
        t.free.lock().unwrap().0.push(index as u32);
    }
}

#[inline]
fn queue(id: u32) -> Result<&'static Rcqb> {
    let p = table().slots[(id & 0xffff) as usize].load(Ordering::Acquire);
    // SAFETY: a non-null entry stays alive until its owner thread's finalizer
    // removes it, and we check below that the caller is that owner thread.
    let entry = unsafe { p.as_ref() };
    match entry {
        Some(e) if e.generation == id >> 16 && e.owner == thread_token() => {
            // SAFETY: as above; the reference does not outlive this call on this thread.
            Ok(unsafe { &*(Arc::as_ptr(&e.queue)) })
        }
        _ => Err(Error::new(Status::InvalidArg, format!("ERR_RCQB_INVALID_ARGUMENT: {id} is not a live queue handle of this thread"))),
    }
}

/// Blocks; `timeout_ms < 0` means forever.
#[napi]
pub fn q_enqueue(id: u32, item: &[u8], timeout_ms: f64) -> Result<()> {
    let q = queue(id)?;
    if timeout_ms < 0.0 { q.enqueue(item) } else { q.enqueue_timeout(item, ms(timeout_ms)) }.map_err(to_napi)
}

#[napi]
pub fn q_try_enqueue(id: u32, item: &[u8]) -> Result<bool> {
    queue(id)?.try_enqueue(item).map_err(to_napi)
}

/// Returns the item's length.
#[napi]
pub fn q_dequeue_into(id: u32, mut out: Uint8Array, timeout_ms: f64) -> Result<u32> {
    let q = queue(id)?;
    // SAFETY: the view is used only during this synchronous call, on the JS thread.
    let out = unsafe { out.as_mut() };
    let r = if timeout_ms < 0.0 { q.dequeue_into(out) } else { q.dequeue_into_timeout(out, ms(timeout_ms)) };
    r.map(|n| n as u32).map_err(to_napi)
}

/// Returns the item's length, or -1 if the queue is empty.
#[napi]
pub fn q_try_dequeue_into(id: u32, mut out: Uint8Array) -> Result<i32> {
    let q = queue(id)?;
    // SAFETY: the view is used only during this synchronous call, on the JS thread.
    let out = unsafe { out.as_mut() };
    Ok(q.try_dequeue_into(out).map_err(to_napi)?.map_or(-1, |n| n as i32))
}

/// 64-bit fast path; JS numbers up to 2^53 travel exactly.
#[napi]
pub fn q_enqueue_number(id: u32, v: f64, timeout_ms: f64) -> Result<()> {
    let q = queue(id)?;
    let v = v as i64 as u64;
    if timeout_ms < 0.0 { q.enqueue_u64(v) } else { q.enqueue_u64_timeout(v, ms(timeout_ms)) }.map_err(to_napi)
}

#[napi]
pub fn q_try_enqueue_number(id: u32, v: f64) -> Result<bool> {
    queue(id)?.try_enqueue_u64(v as i64 as u64).map_err(to_napi)
}

#[napi]
pub fn q_dequeue_number(id: u32, timeout_ms: f64) -> Result<f64> {
    let q = queue(id)?;
    let r = if timeout_ms < 0.0 { q.dequeue_u64() } else { q.dequeue_u64_timeout(ms(timeout_ms)) };
    r.map(|v| v as i64 as f64).map_err(to_napi)
}

/// Returns null if the queue is empty.
#[napi]
pub fn q_try_dequeue_number(id: u32) -> Result<Option<f64>> {
    Ok(queue(id)?.try_dequeue_u64().map_err(to_napi)?.map(|v| v as i64 as f64))
}
