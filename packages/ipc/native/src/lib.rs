//! Node-API glue for @polytropon/ipc. A sync call is one native call (copy
//! in, post, spin then wait, copy out); its reply lands in a buffer the JS
//! layer passes, and its length in a scratch array, so no object is made
//! per call. The TS layer validates options and turns the `CODE: message`
//! reasons raised here into `IpcError`s.
//!
//! The hot operations (a client's call, start and poll, a service's take
//! and complete) are plain functions over a handle number, not class
//! methods: a class method costs 330-400 ns a call here (see
//! polytropon-handles), as much as a whole null round trip in the core.
//! Each `NativeFront` and `NativeBack` puts its state in a table for the
//! thread that made it and removes it when finalized.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{AsyncTask, Buffer, Float64ArraySlice, Uint8ArraySlice};
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use polytropon_handles::Handles;
use polytropon_ipc::{BackDriver, BackOptions, FrontDriver, FrontOptions, Geometry, Request, Waiter};

fn to_napi(e: polytropon_ipc::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}

fn gone() -> Error {
    Error::new(Status::GenericFailure, "ERR_IPC_DETACHED: this driver was detached or closed".to_string())
}

fn dur_ns(ns: f64) -> Duration {
    Duration::from_nanos(ns.clamp(0.0, 1e15) as u64)
}

fn not_here(handle: u32) -> Error {
    Error::new(Status::InvalidArg, format!("ERR_IPC_INVALID_ARGUMENT: {handle} is not a live driver handle of this thread"))
}

fn busy() -> Error {
    Error::new(Status::GenericFailure, "ERR_IPC_BUSY: this driver is in use by an outer call".to_string())
}

/// A client's state, for the thread that attached it.
struct FrontEntry {
    /// Shared with the async calls, which run on libuv's threads.
    inner: Arc<Mutex<Option<FrontDriver>>>,
    /// The last reply, when it did not fit the caller's reply buffer.
    pending: RefCell<Vec<u8>>,
}

static FRONTS: Handles<FrontEntry> = Handles::new(4096);

/// Runs `f` on the entry `handle` names in `table`, if it is this thread's.
fn entry<T: Send, R>(table: &Handles<T>, handle: u32, f: impl FnOnce(&T) -> Result<R>) -> Result<R> {
    table.with(handle, f).unwrap_or_else(|| Err(not_here(handle)))
}

/// Runs `f` on the attached driver and pending reply of `handle`.
fn front<R>(handle: u32, f: impl FnOnce(&mut FrontDriver, &mut Vec<u8>) -> Result<R>) -> Result<R> {
    entry(&FRONTS, handle, |e| {
        let mut pending = e.pending.try_borrow_mut().map_err(|_| busy())?;
        let mut guard = e.inner.lock().map_err(|_| gone())?;
        f(guard.as_mut().ok_or_else(gone)?, &mut pending)
    })
}

/// Sends a request on the driver `handle`, waits, and copies the reply
/// into `reply` if it fits (straight out of the channel). `out[0]` = the
/// reply's length; a longer reply is kept for `frontTakeReply`. Returns
/// the service's status.
#[napi]
pub fn front_call(handle: u32, opcode: u32, payload: Uint8ArraySlice, mut reply: Uint8ArraySlice, mut out: Float64ArraySlice) -> Result<f64> {
    // A payload in the reply buffer (a view of an earlier reply sent on) is
    // copied out first: the reply is written over it.
    let payload = apart(&payload, &[&reply]);
    // Borrowed views, not Uint8Array/Float64Array, which take a Node-API
    // reference per call (created and deleted: ~0.1 µs each).
    // SAFETY: both arrays are arguments of this synchronous call, alive and
    // not otherwise borrowed while it runs (JS is blocked in it); `payload`
    // is disjoint from `reply` (or a copy).
    let (reply, out) = unsafe { (reply.as_mut(), out.as_mut()) };
    front(handle, |front, pending| Ok(deliver(front.call_into(opcode, &payload, reply, pending).map_err(to_napi)?, out)))
}

/// Sends a request and waits, copying the reply straight out of the channel
/// into two places: its first `head.length` bytes into `head`, the rest into
/// `body` (a read's data, into the caller's buffer: no copy between).
/// `out[0]` = the reply's length. A reply longer than both is
/// ERR_IPC_PROTOCOL. Returns the service's status.
#[napi]
pub fn front_call_split(handle: u32, opcode: u32, payload: Uint8ArraySlice, mut head: Uint8ArraySlice, mut body: Uint8ArraySlice, mut out: Float64ArraySlice) -> Result<f64> {
    if overlaps(&head, &body) {
        return Err(Error::new(Status::InvalidArg, "ERR_IPC_INVALID_ARGUMENT: a reply's head and body must not share memory".to_string()));
    }
    // A payload where the reply goes is copied out first.
    let payload = apart(&payload, &[&head, &body]);
    // SAFETY: the arrays are arguments of this synchronous call, alive and
    // not otherwise borrowed while it runs; `head` and `body` are disjoint
    // (checked above) and `payload` is disjoint from both (or a copy).
    let (head, body, out) = unsafe { (head.as_mut(), body.as_mut(), out.as_mut()) };
    front(handle, |front, pending| {
        pending.clear();
        Ok(deliver(front.call_split(opcode, &payload, head, body).map_err(to_napi)?, out))
    })
}

/// The reply of the last call, when it was longer than its reply buffer.
#[napi]
pub fn front_take_reply(handle: u32) -> Result<Buffer> {
    entry(&FRONTS, handle, |e| e.pending.try_borrow_mut().map(|mut p| std::mem::take(&mut *p).into()).map_err(|_| busy()))
}

/// Posts a request of at most `bufferSize()` bytes without waiting.
#[napi]
pub fn front_start(handle: u32, opcode: u32, payload: &[u8]) -> Result<()> {
    front(handle, |front, _| front.start(opcode, payload).map_err(to_napi))
}

/// The reply to the started request if it is there (as `frontCall` returns
/// it), or NaN without waiting.
#[napi]
pub fn front_poll(handle: u32, mut reply: Uint8ArraySlice, mut out: Float64ArraySlice) -> Result<f64> {
    // SAFETY: as in `front_call`.
    let (reply, out) = unsafe { (reply.as_mut(), out.as_mut()) };
    front(handle, |front, pending| Ok(front.poll_into(reply, pending).map_err(to_napi)?.map_or(f64::NAN, |r| deliver(r, out))))
}

/// A service's state, for the thread that created it.
struct BackEntry {
    back: RefCell<Option<BackDriver>>,
    /// Requests taken that did not fit the caller's inbox yet.
    held: RefCell<VecDeque<Request>>,
}

static BACKS: Handles<BackEntry> = Handles::new(1024);

/// Runs `f` on the open channel and held requests of `handle`.
fn back<R>(handle: u32, f: impl FnOnce(&mut BackDriver, &mut VecDeque<Request>) -> Result<R>) -> Result<R> {
    entry(&BACKS, handle, |e| {
        let mut back = e.back.try_borrow_mut().map_err(|_| busy())?;
        let mut held = e.held.try_borrow_mut().map_err(|_| busy())?;
        f(back.as_mut().ok_or_else(gone)?, &mut held)
    })
}

/// Takes up to `max` requests, spinning up to `spinNs` while there are
/// none; never sleeps (see `NativeBack.wait`). Writes them into `into`,
/// each as a 32-byte little-endian record (index u32, seq u32, opcode u32,
/// length u32, client f64, pid u32, 4 zero bytes) followed by its payload
/// padded to 8 bytes, and returns how many. One buffer instead of an
/// object per request: the JS side builds its objects far more cheaply
/// than Node-API can. Requests that do not fit wait for the next call.
#[napi]
pub fn back_take(handle: u32, max: u32, spin_ns: f64, mut into: Uint8ArraySlice) -> Result<u32> {
    back(handle, |back, held| {
        if held.is_empty() {
            held.extend(back.take(max.max(1) as usize, dur_ns(spin_ns), Duration::ZERO));
        }
        // SAFETY: `into` is an argument of this synchronous call, not
        // otherwise borrowed while it runs.
        let out = unsafe { into.as_mut() };
        polytropon_ipc::inbox::pack(back, held, out).map_err(to_napi)
    })
}

/// Completes request (index, seq): false if its client is gone.
#[napi]
pub fn back_complete(handle: u32, index: u32, seq: u32, status: f64, data: &[u8]) -> Result<bool> {
    back(handle, |back, _| Ok(back.complete((index, seq), status as i64, data)))
}

/// The application's end of a channel: one request buffer, one call at a
/// time. Its calls are the `front*` functions, with its `handle`.
#[napi]
pub struct NativeFront {
    handle: u32,
    inner: Arc<Mutex<Option<FrontDriver>>>,
}

impl Drop for NativeFront {
    fn drop(&mut self) {
        FRONTS.remove(self.handle);
    }
}

#[napi]
impl NativeFront {
    #[napi(factory)]
    pub fn attach(name: String, spin_ns: f64, queue: Option<u32>) -> Result<NativeFront> {
        let front = FrontDriver::attach(&name, FrontOptions { spin: dur_ns(spin_ns), queue }).map_err(to_napi)?;
        let inner = Arc::new(Mutex::new(Some(front)));
        let entry = FrontEntry { inner: inner.clone(), pending: RefCell::default() };
        let handle = FRONTS.insert(entry).map_err(|_| Error::new(Status::GenericFailure, "ERR_IPC_IO: more than 4096 drivers attached in this process".to_string()))?;
        Ok(NativeFront { handle, inner })
    }

    /// This driver's number for the `front*` functions, on this thread.
    #[napi(getter)]
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Waits for the started request's reply off the JS thread: `[status, reply]`.
    #[napi]
    pub fn finish_async(&self) -> AsyncTask<AsyncCall> {
        AsyncTask::new(AsyncCall { front: self.inner.clone(), opcode: None, payload: Vec::new(), reply: Vec::new() })
    }

    /// Bytes of the request buffer: the most `frontStart` takes.
    #[napi]
    pub fn buffer_size(&self) -> Result<u32> {
        let guard = self.inner.lock().map_err(|_| gone())?;
        Ok(guard.as_ref().ok_or_else(gone)?.buffer_size() as u32)
    }

    /// The same call off the JS thread: resolves to `[status, reply]`.
    #[napi]
    pub fn call_async(&self, opcode: u32, payload: &[u8]) -> AsyncTask<AsyncCall> {
        AsyncTask::new(AsyncCall { front: self.inner.clone(), opcode: Some(opcode), payload: payload.to_vec(), reply: Vec::new() })
    }

    /// Frees the request buffer; later calls fail with ERR_IPC_DETACHED.
    #[napi]
    pub fn detach(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.take();
        }
    }
}

/// `payload`, or a copy of it if it shares memory with any of `targets`
/// (where the reply will be written).
fn apart<'a>(payload: &'a [u8], targets: &[&[u8]]) -> std::borrow::Cow<'a, [u8]> {
    if targets.iter().any(|t| overlaps(payload, t)) {
        std::borrow::Cow::Owned(payload.to_vec())
    } else {
        std::borrow::Cow::Borrowed(payload)
    }
}

/// Whether two byte ranges share memory.
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    !a.is_empty() && !b.is_empty() && a0 < b0 + b.len() && b0 < a0 + a.len()
}

/// `out[0]` = the reply's length; returns the status.
fn deliver((status, len): (i64, usize), out: &mut [f64]) -> f64 {
    if let Some(slot) = out.first_mut() {
        *slot = len as f64;
    }
    status as f64
}

pub struct AsyncCall {
    front: Arc<Mutex<Option<FrontDriver>>>,
    /// None: only wait for the request already started.
    opcode: Option<u32>,
    payload: Vec<u8>,
    reply: Vec<u8>,
}

impl Task for AsyncCall {
    type Output = f64;
    type JsValue = (f64, Buffer);

    fn compute(&mut self) -> Result<f64> {
        let mut guard = self.front.lock().map_err(|_| gone())?;
        let front = guard.as_mut().ok_or_else(gone)?;
        match self.opcode {
            Some(op) => front.call(op, &self.payload, &mut self.reply),
            None => front.finish(&mut self.reply),
        }
        .map(|s| s as f64)
        .map_err(to_napi)
    }

    fn resolve(&mut self, _env: Env, status: f64) -> Result<(f64, Buffer)> {
        Ok((status, std::mem::take(&mut self.reply).into()))
    }
}

/// The service's end of a channel. Its hot operations are the `back*`
/// functions, with its `handle`.
#[napi]
pub struct NativeBack {
    handle: u32,
    waiter: Arc<Waiter>,
}

impl Drop for NativeBack {
    fn drop(&mut self) {
        BACKS.remove(self.handle);
    }
}

#[napi]
impl NativeBack {
    #[napi(factory)]
    pub fn create(name: String, queue_count: u32, queue_capacity: u32, buffer_count: u32, buffer_size: u32, max_request: f64) -> Result<NativeBack> {
        let geometry = Geometry { queue_count, queue_capacity, buffer_count, buffer_size };
        // Whole requests over 64 KiB stay in the client's buffer: `take` copies
        // them once, straight into the JS inbox.
        let opts = BackOptions { geometry, max_request: max_request.clamp(0.0, 1e15) as usize, copy_limit: 64 * 1024 };
        let back = BackDriver::create(&name, opts).map_err(to_napi)?;
        let waiter = Arc::new(back.waiter());
        let entry = BackEntry { back: RefCell::new(Some(back)), held: RefCell::default() };
        // On failure the entry comes back and is dropped, which closes the channel.
        let handle = BACKS.insert(entry).map_err(|_| Error::new(Status::GenericFailure, "ERR_IPC_IO: more than 1024 channels served in this process".to_string()))?;
        Ok(NativeBack { handle, waiter })
    }

    /// This channel's number for the `back*` functions, on this thread.
    #[napi(getter)]
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Resolves when requests wait (true) or after `timeoutMs` (false),
    /// sleeping off the JS thread.
    #[napi]
    pub fn wait(&self, timeout_ms: f64) -> AsyncTask<Wait> {
        AsyncTask::new(Wait { waiter: self.waiter.clone(), timeout: dur_ns(timeout_ms * 1e6) })
    }

    /// Clients that exited or detached since the last call, by id.
    #[napi]
    pub fn reap(&self) -> Result<Vec<f64>> {
        back(self.handle, |b, _| Ok(b.reap().into_iter().map(|c| c as f64).collect()))
    }

    /// Requests refused so far: [stale descriptors, protocol errors].
    #[napi]
    pub fn refusals(&self) -> Result<Vec<f64>> {
        let r = back(self.handle, |b, _| Ok(b.refusals()))?;
        Ok(vec![r.stale_descriptors as f64, r.protocol_errors as f64])
    }

    /// Stops: waiting clients fail with ERR_IPC_SERVICE_GONE, names are removed.
    #[napi]
    pub fn close(&self) {
        let closed = BACKS.with(self.handle, |e| e.back.try_borrow_mut().ok().and_then(|mut b| b.take()));
        if let Some(Some(mut b)) = closed {
            b.close();
        }
    }
}

pub struct Wait {
    waiter: Arc<Waiter>,
    timeout: Duration,
}

impl Task for Wait {
    type Output = bool;
    type JsValue = bool;

    fn compute(&mut self) -> Result<bool> {
        Ok(self.waiter.wait(self.timeout))
    }

    fn resolve(&mut self, _env: Env, v: bool) -> Result<bool> {
        Ok(v)
    }
}
