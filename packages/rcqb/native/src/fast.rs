//! The hot path as plain functions over a handle number: a napi-rs class
//! method costs 330-400 ns a call here, a plain function about 35 ns (see
//! polytropon-handles). Each `NativeQueue` puts its queue in this table, for
//! the thread that made it (each worker attaches its own), and removes it in
//! its finalizer, which runs on that thread; the JS layer calls these
//! functions with the number. A stale, forged or foreign number gets an
//! error, never freed memory.

use std::sync::Arc;

use napi::bindgen_prelude::Uint8ArraySlice;
use napi::{Error, Result, Status};
use napi_derive::napi;
use polytropon_handles::Handles;
use polytropon_rcqb::Rcqb;

use crate::{ms, to_napi};

static QUEUES: Handles<Arc<Rcqb>> = Handles::new(polytropon_handles::MAX_SLOTS);

/// Registers `queue` for the calling thread; returns its number.
pub(crate) fn register(queue: Arc<Rcqb>) -> Result<u32> {
    QUEUES.insert(queue).map_err(|_| Error::new(Status::GenericFailure, "ERR_RCQB_IO: more than 65536 queue handles open in this process".to_string()))
}

/// Removes an entry; called from the owning object's finalizer (same thread).
pub(crate) fn unregister(id: u32) {
    QUEUES.remove(id);
}

/// Runs `f` on the queue `id` names, if it is a live queue of this thread.
#[inline]
fn queue<R>(id: u32, f: impl FnOnce(&Rcqb) -> Result<R>) -> Result<R> {
    QUEUES.with(id, |q| f(q)).unwrap_or_else(|| Err(Error::new(Status::InvalidArg, format!("ERR_RCQB_INVALID_ARGUMENT: {id} is not a live queue handle of this thread"))))
}

/// Blocks; `timeout_ms < 0` means forever.
#[napi]
pub fn q_enqueue(id: u32, item: &[u8], timeout_ms: f64) -> Result<()> {
    queue(id, |q| if timeout_ms < 0.0 { q.enqueue(item) } else { q.enqueue_timeout(item, ms(timeout_ms)) }.map_err(to_napi))
}

#[napi]
pub fn q_try_enqueue(id: u32, item: &[u8]) -> Result<bool> {
    queue(id, |q| q.try_enqueue(item).map_err(to_napi))
}

/// Returns the item's length.
#[napi]
pub fn q_dequeue_into(id: u32, mut out: Uint8ArraySlice, timeout_ms: f64) -> Result<u32> {
    // SAFETY: the view is used only during this synchronous call, on the JS thread.
    let out = unsafe { out.as_mut() };
    queue(id, |q| {
        let r = if timeout_ms < 0.0 { q.dequeue_into(out) } else { q.dequeue_into_timeout(out, ms(timeout_ms)) };
        r.map(|n| n as u32).map_err(to_napi)
    })
}

/// Returns the item's length, or -1 if the queue is empty.
#[napi]
pub fn q_try_dequeue_into(id: u32, mut out: Uint8ArraySlice) -> Result<i32> {
    // SAFETY: the view is used only during this synchronous call, on the JS thread.
    let out = unsafe { out.as_mut() };
    queue(id, |q| Ok(q.try_dequeue_into(out).map_err(to_napi)?.map_or(-1, |n| n as i32)))
}

/// 64-bit fast path; JS numbers up to 2^53 travel exactly.
#[napi]
pub fn q_enqueue_number(id: u32, v: f64, timeout_ms: f64) -> Result<()> {
    let v = v as i64 as u64;
    queue(id, |q| if timeout_ms < 0.0 { q.enqueue_u64(v) } else { q.enqueue_u64_timeout(v, ms(timeout_ms)) }.map_err(to_napi))
}

#[napi]
pub fn q_try_enqueue_number(id: u32, v: f64) -> Result<bool> {
    queue(id, |q| q.try_enqueue_u64(v as i64 as u64).map_err(to_napi))
}

#[napi]
pub fn q_dequeue_number(id: u32, timeout_ms: f64) -> Result<f64> {
    queue(id, |q| {
        let r = if timeout_ms < 0.0 { q.dequeue_u64() } else { q.dequeue_u64_timeout(ms(timeout_ms)) };
        r.map(|v| v as i64 as f64).map_err(to_napi)
    })
}

/// Returns null if the queue is empty.
#[napi]
pub fn q_try_dequeue_number(id: u32) -> Result<Option<f64>> {
    queue(id, |q| Ok(q.try_dequeue_u64().map_err(to_napi)?.map(|v| v as i64 as f64)))
}
