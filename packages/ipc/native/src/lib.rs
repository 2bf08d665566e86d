//! Node-API glue for @polytropon/ipc. A sync call is one native call (copy
//! in, post, spin then wait, copy out); its reply lands in a buffer the JS
//! layer passes, and its length in a scratch array, so no object is made
//! per call. The TS layer validates options and turns the `CODE: message`
//! reasons raised here into `IpcError`s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{AsyncTask, Buffer, Float64Array, Uint8Array};
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use polytropon_ipc::{BackDriver, BackOptions, FrontDriver, FrontOptions, Geometry, Waiter};

/// Bytes of the record before each request's payload in `NativeBack::take`.

fn to_napi(e: polytropon_ipc::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}

fn gone() -> Error {
    Error::new(Status::GenericFailure, "ERR_IPC_DETACHED: this driver was detached or closed".to_string())
}

fn dur_ns(ns: f64) -> Duration {
    Duration::from_nanos(ns.clamp(0.0, 1e15) as u64)
}

/// The application's end of a channel: one request buffer, one call at a time.
#[napi]
pub struct NativeFront {
    inner: Arc<Mutex<Option<FrontDriver>>>,
    /// The last reply, when it did not fit the caller's reply buffer.
    pending: Vec<u8>,
}

#[napi]
impl NativeFront {
    #[napi(factory)]
    pub fn attach(name: String, spin_ns: f64, queue: Option<u32>) -> Result<NativeFront> {
        let front = FrontDriver::attach(&name, FrontOptions { spin: dur_ns(spin_ns), queue }).map_err(to_napi)?;
        Ok(NativeFront { inner: Arc::new(Mutex::new(Some(front))), pending: Vec::new() })
    }

    /// Sends a request, waits, and copies the reply into `reply` if it fits.
    /// `out[0]` = the reply's length; a longer reply is kept for `takeReply`.
    /// Returns the service's status.
    #[napi]
    pub fn call(&mut self, opcode: u32, payload: &[u8], mut reply: Uint8Array, mut out: Float64Array) -> Result<f64> {
        let mut guard = self.inner.lock().map_err(|_| gone())?;
        let front = guard.as_mut().ok_or_else(gone)?;
        let status = front.call(opcode, payload, &mut self.pending).map_err(to_napi)?;
        // SAFETY: both arrays are arguments of this synchronous call, alive
        // and not otherwise borrowed while it runs (JS is blocked in it).
        let (reply, out) = unsafe { (reply.as_mut(), out.as_mut()) };
        Ok(deliver(&mut self.pending, status, reply, out))
    }

    /// The reply of the last call, when it was longer than its reply buffer.
    #[napi]
    pub fn take_reply(&mut self) -> Buffer {
        std::mem::take(&mut self.pending).into()
    }

    /// Posts a request of at most `bufferSize()` bytes without waiting.
    #[napi]
    pub fn start(&self, opcode: u32, payload: &[u8]) -> Result<()> {
        let mut guard = self.inner.lock().map_err(|_| gone())?;
        guard.as_mut().ok_or_else(gone)?.start(opcode, payload).map_err(to_napi)
    }

    /// The reply to the started request if it is there (as `call` returns
    /// it), or NaN without waiting.
    #[napi]
    pub fn poll(&mut self, mut reply: Uint8Array, mut out: Float64Array) -> Result<f64> {
        let mut guard = self.inner.lock().map_err(|_| gone())?;
        let front = guard.as_mut().ok_or_else(gone)?;
        let Some(status) = front.poll(&mut self.pending).map_err(to_napi)? else { return Ok(f64::NAN) };
        // SAFETY: as in `call`.
        let (reply, out) = unsafe { (reply.as_mut(), out.as_mut()) };
        Ok(deliver(&mut self.pending, status, reply, out))
    }

    /// Waits for the started request's reply off the JS thread: `[status, reply]`.
    #[napi]
    pub fn finish_async(&self) -> AsyncTask<AsyncCall> {
        AsyncTask::new(AsyncCall { front: self.inner.clone(), opcode: None, payload: Vec::new(), reply: Vec::new() })
    }

    /// Bytes of the request buffer: the most `start` takes.
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

/// Copies a reply into the caller's buffer if it fits (else it stays in
/// `pending` for `takeReply`); `out[0]` = its length. Returns the status.
fn deliver(pending: &mut Vec<u8>, status: i64, reply: &mut [u8], out: &mut [f64]) -> f64 {
    let n = pending.len();
    if let Some(slot) = out.first_mut() {
        *slot = n as f64;
    }
    if n <= reply.len() {
        reply[..n].copy_from_slice(pending);
        pending.clear();
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

/// The service's end of a channel.
#[napi]
pub struct NativeBack {
    /// Behind a mutex so that every method takes `&self`: an async `wait`
    /// may be pending while the JS thread takes, completes or closes.
    inner: Mutex<Option<BackDriver>>,
    waiter: Arc<Waiter>,
    held: Mutex<std::collections::VecDeque<polytropon_ipc::Request>>,
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
        Ok(NativeBack { inner: Mutex::new(Some(back)), waiter, held: Mutex::default() })
    }

    fn with<T>(&self, f: impl FnOnce(&mut BackDriver) -> T) -> Result<T> {
        let mut g = self.inner.lock().map_err(|_| gone())?;
        g.as_mut().map(f).ok_or_else(gone)
    }

    /// Takes up to `max` requests, spinning up to `spinNs` while there are
    /// none; never sleeps (see `wait`). Writes them into `into`, each as a
    /// 32-byte little-endian record (index u32, seq u32, opcode u32, length
    /// u32, client f64, pid u32, 4 zero bytes) followed by its payload
    /// padded to 8 bytes, and
    /// returns how many. One buffer instead of an object per request: the
    /// JS side builds its objects far more cheaply than Node-API can.
    /// Requests that do not fit wait in `held` for the next call.
    #[napi]
    pub fn take(&self, max: u32, spin_ns: f64, mut into: Uint8Array) -> Result<u32> {
        let mut held = self.held.lock().map_err(|_| gone())?;
        if held.is_empty() {
            let reqs = self.with(|b| b.take(max.max(1) as usize, dur_ns(spin_ns), Duration::ZERO))?;
            held.extend(reqs);
        }
        // SAFETY: `into` is an argument of this synchronous call, not
        // otherwise borrowed while it runs.
        let out = unsafe { into.as_mut() };
        let mut g = self.inner.lock().map_err(|_| gone())?;
        let back = g.as_mut().ok_or_else(gone)?;
        polytropon_ipc::inbox::pack(back, &mut held, out).map_err(to_napi)
    }

    /// Resolves when requests wait (true) or after `timeoutMs` (false),
    /// sleeping off the JS thread.
    #[napi]
    pub fn wait(&self, timeout_ms: f64) -> AsyncTask<Wait> {
        AsyncTask::new(Wait { waiter: self.waiter.clone(), timeout: dur_ns(timeout_ms * 1e6) })
    }

    /// Completes request (index, seq): false if its client is gone.
    #[napi]
    pub fn complete(&self, index: u32, seq: u32, status: f64, data: &[u8]) -> Result<bool> {
        self.with(|b| b.complete((index, seq), status as i64, data))
    }

    /// Clients that exited or detached since the last call, by id.
    #[napi]
    pub fn reap(&self) -> Result<Vec<f64>> {
        self.with(|b| b.reap().into_iter().map(|c| c as f64).collect())
    }

    /// Requests refused so far: [stale descriptors, protocol errors].
    #[napi]
    pub fn refusals(&self) -> Result<Vec<f64>> {
        let r = self.with(|b| b.refusals())?;
        Ok(vec![r.stale_descriptors as f64, r.protocol_errors as f64])
    }

    /// Stops: waiting clients fail with ERR_IPC_SERVICE_GONE, names are removed.
    #[napi]
    pub fn close(&self) {
        if let Some(mut b) = self.inner.lock().ok().and_then(|mut g| g.take()) {
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
