//! Node-API glue for @polytropon/ioservice: the service's end of its
//! channel, the same as @polytropon/ipc's NativeBack (so that ipc's
//! BackDriver serves it), except that `take` answers the requests of
//! local-directory instances it can (lookups, and files opened here: see
//! polytropon-local-instance) before JavaScript sees them. As there, the
//! hot operations (take, complete, servedNatively) are plain functions over
//! the service's handle number, not class methods (see polytropon-handles).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{AsyncTask, Float64Array, Uint8ArraySlice};
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use polytropon_handles::Handles;
use polytropon_ipc::{BackDriver, BackOptions, Geometry, Request, Waiter};
use polytropon_local_instance::{Done, Instances, Limits, ReplyArea, Served};

/// Longest a take answers requests natively before it returns to
/// JavaScript, whose timers and reaping must run (as its serve loop yields
/// at least every millisecond).
const NATIVE_STRETCH: Duration = Duration::from_millis(1);

/// A scratch buffer that grew past this is given back after the request.
const KEEP_SCRATCH: usize = 1 << 20;

fn to_napi(e: polytropon_ipc::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}

fn gone() -> Error {
    Error::new(Status::GenericFailure, "ERR_IPC_DETACHED: this channel was closed".to_string())
}

fn dur_ns(ns: f64) -> Duration {
    Duration::from_nanos(ns.clamp(0.0, 1e15) as u64)
}

fn not_here(handle: u32) -> Error {
    Error::new(Status::InvalidArg, format!("ERR_IPC_INVALID_ARGUMENT: {handle} is not a live service handle of this thread"))
}

fn busy() -> Error {
    Error::new(Status::GenericFailure, "ERR_IPC_BUSY: this service is in use by an outer call".to_string())
}

static SERVICES: Handles<RefCell<State>> = Handles::new(1024);

/// Runs `f` on the state of the service `handle`, for the thread that made it.
fn service<T>(handle: u32, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
    SERVICES.with(handle, |cell| f(&mut *cell.try_borrow_mut().map_err(|_| busy())?)).unwrap_or_else(|| Err(not_here(handle)))
}

struct State {
    back: Option<BackDriver>,
    /// Requests taken for JavaScript that did not fit its buffer yet.
    held: VecDeque<Request>,
    local: Instances,
    /// Requests answered natively since `servedNatively` was last asked.
    served: u32,
    /// An in-place request's bytes, copied out of the client's buffer.
    scratch: Vec<u8>,
}

/// The I/O service's end of its channel; its hot operations are the
/// `service*` functions, with its `handle`.
#[napi]
pub struct NativeService {
    handle: u32,
    waiter: Arc<Waiter>,
    /// Flushes finished and not completed yet: the service must not sleep over them.
    finished: Arc<Mutex<Vec<Done>>>,
}

#[napi]
impl NativeService {
    /// Creates the channel (as NativeBack.create does), with the service's
    /// limits for what it answers natively: handles per process, bytes per read.
    #[napi(factory)]
    #[allow(clippy::too_many_arguments)] // the channel's geometry and the service's limits, as JS has them
    pub fn create(name: String, queue_count: u32, queue_capacity: u32, buffer_count: u32, buffer_size: u32, max_request: f64, handles_per_process: u32, read_bytes: u32) -> Result<NativeService> {
        let geometry = Geometry { queue_count, queue_capacity, buffer_count, buffer_size };
        let opts = BackOptions { geometry, max_request: max_request.clamp(0.0, 1e15) as usize, copy_limit: 64 * 1024 };
        let back = BackDriver::create(&name, opts).map_err(to_napi)?;
        let waiter = Arc::new(back.waiter());
        let limits = Limits { handles_per_process: handles_per_process as usize, read_bytes: read_bytes as usize };
        // A flush finished on its own thread: wake the service if it sleeps.
        let w = waiter.clone();
        let local = Instances::new(limits, Arc::new(move || w.wake()));
        let finished = local.finished_list();
        let state = State { back: Some(back), held: VecDeque::new(), local, served: 0, scratch: Vec::new() };
        // On failure the state comes back and is dropped, which closes the channel.
        let handle = SERVICES.insert(RefCell::new(state)).map_err(|_| Error::new(Status::GenericFailure, "ERR_IPC_IO: more than 1024 channels served in this process".to_string()))?;
        Ok(NativeService { handle, waiter, finished })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        service(self.handle, |s| Ok(f(s)))
    }

    /// This service's number for the `service*` functions, on this thread.
    #[napi(getter)]
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Answers the requests of instance `name` natively, beneath the
    /// directory `root`, with at most `maxHandles` open on it. False where
    /// the kernel lacks openat2 (the JavaScript handler keeps answering);
    /// throws if `root` cannot be opened.
    #[napi]
    pub fn mount_local(&self, name: String, root: String, max_handles: u32) -> Result<bool> {
        match self.with(|s| s.local.mount(&name, &root, max_handles as usize))? {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(false),
            Err(e) => Err(Error::new(Status::GenericFailure, format!("ERR_IPC_IO: cannot open {root}: {e}"))),
        }
    }

    /// Stops answering for `name` and closes the handles open on it; true
    /// if it was answered natively.
    #[napi]
    pub fn unmount_local(&self, name: String) -> Result<bool> {
        self.with(|s| s.local.unmount(&name))
    }

    /// A process is gone: closes the handles it opened natively.
    #[napi]
    pub fn close_process(&self, pid: u32) -> Result<()> {
        self.with(|s| s.local.close_process(pid))
    }

    /// A client is gone (its id is not reported again).
    #[napi]
    pub fn forget_client(&self, client: f64) -> Result<()> {
        self.with(|s| s.local.forget_client(client as u64))
    }

    /// Flushes running on the flushing threads (a graceful stop waits for them).
    #[napi]
    pub fn flushes_in_flight(&self) -> Result<u32> {
        self.with(|s| s.local.flushes_in_flight() as u32)
    }

    /// The instances answered natively now (one whose root went is no longer).
    #[napi]
    pub fn instances(&self) -> Result<Vec<String>> {
        self.with(|s| s.local.names())
    }

    /// Handles open natively, in all.
    #[napi]
    pub fn open_handles(&self) -> Result<u32> {
        self.with(|s| s.local.open_handles() as u32)
    }

    /// Clients first answered natively since the last call, as pairs
    /// [client, pid, client, pid, ...]: the service's registry of clients
    /// per process must know them.
    #[napi]
    pub fn new_clients(&self) -> Result<Float64Array> {
        self.with(|s| Float64Array::new(s.local.new_clients().into_iter().flat_map(|(c, p)| [c as f64, f64::from(p)]).collect()))
    }

    /// While stopping, every request goes to JavaScript (which refuses it).
    #[napi]
    pub fn set_stopping(&self, stopping: bool) -> Result<()> {
        self.with(|s| s.local.stopping = stopping)
    }

    /// The native counters of `opcode`: [count, errors, max µs, then the
    /// histogram's buckets], or null for an opcode never answered natively.
    #[napi]
    pub fn counters(&self, opcode: u32) -> Result<Option<Float64Array>> {
        self.with(|s| {
            s.local.counter(opcode).map(|c| {
                let mut v = vec![c.count as f64, c.errors as f64, c.max_us];
                v.extend(c.histogram.iter().map(|&n| n as f64));
                Float64Array::new(v)
            })
        })
    }

    /// Resolves when requests wait (true) or after `timeoutMs` (false),
    /// sleeping off the JS thread; at once when flushes finished.
    #[napi]
    pub fn wait(&self, timeout_ms: f64) -> AsyncTask<Wait> {
        AsyncTask::new(Wait { waiter: self.waiter.clone(), finished: self.finished.clone(), timeout: dur_ns(timeout_ms * 1e6) })
    }

    /// Clients that exited or detached since the last call, by id.
    #[napi]
    pub fn reap(&self) -> Result<Vec<f64>> {
        service(self.handle, |s| Ok(s.back.as_mut().ok_or_else(gone)?.reap().into_iter().map(|c| c as f64).collect()))
    }

    /// Requests refused so far: [stale descriptors, protocol errors].
    #[napi]
    pub fn refusals(&self) -> Result<Vec<f64>> {
        let r = service(self.handle, |s| Ok(s.back.as_ref().ok_or_else(gone)?.refusals()))?;
        Ok(vec![r.stale_descriptors as f64, r.protocol_errors as f64])
    }

    /// Stops: waiting clients fail with ERR_IPC_SERVICE_GONE, names are removed.
    #[napi]
    pub fn close(&self) {
        let _ = self.with(|s| {
            s.local.unmount_all();
            if let Some(mut b) = s.back.take() {
                b.close();
            }
        });
    }
}

impl Drop for NativeService {
    fn drop(&mut self) {
        SERVICES.remove(self.handle);
    }
}

/// Takes requests as NativeBack.take does (same records in `into`),
/// answering natively those of local-directory instances it can; keeps
/// taking while it answers them all, up to `spinNs` without a request
/// and a millisecond in all. Returns how many it wrote for JavaScript.
#[napi]
pub fn service_take(handle: u32, max: u32, spin_ns: f64, mut into: Uint8ArraySlice) -> Result<u32> {
    service(handle, |g| {
        let State { back, held, local, served, scratch } = g;
        let back = back.as_mut().ok_or_else(gone)?;
        complete_flushes(back, local, served);
        local.check_roots();
        if held.is_empty() {
            let spin = dur_ns(spin_ns);
            let start = Instant::now();
            let mut last = start;
            loop {
                let reqs = back.take(max.max(1) as usize, spin.saturating_sub(last.elapsed()), Duration::ZERO);
                if reqs.is_empty() {
                    break;
                }
                for r in reqs {
                    let payload: &[u8] = if r.in_place == 0 {
                        &r.payload
                    } else if r.opcode != polytropon_local_instance::wire::WRITE {
                        held.push_back(r);
                        continue;
                    } else {
                        // A large request (a write's data) left in the
                        // client's buffer: copied out, as it is untrusted
                        // memory that may change underneath.
                        let Some((src, size)) = back.request_area(r.token()) else {
                            continue;
                        };
                        if r.in_place > size {
                            continue;
                        }
                        scratch.clear();
                        if scratch.capacity() > KEEP_SCRATCH {
                            *scratch = Vec::new();
                        }
                        scratch.reserve(r.in_place);
                        // SAFETY: `src` is the request's data area in the
                        // mapped channel, `r.in_place` <= its size bytes;
                        // `scratch` has room for them (reserved above).
                        unsafe {
                            std::ptr::copy_nonoverlapping(src, scratch.as_mut_ptr(), r.in_place);
                            scratch.set_len(r.in_place);
                        }
                        scratch
                    };
                    let (index, seq) = r.token();
                    // A read lands in the client's buffer straight from the
                    // kernel (its request was copied out: `payload`).
                    let area = if r.opcode == polytropon_local_instance::wire::READ && r.in_place == 0 {
                        back.request_area(r.token()).map(|(at, len)| ReplyArea { at, len })
                    } else {
                        None
                    };
                    // SAFETY: the area is the request's data area in the
                    // mapped channel, writable for its size until the
                    // request is completed below; nothing here reads it.
                    match unsafe { local.serve_into(u64::from(index) << 32 | u64::from(seq), r.client, r.pid, r.opcode, payload, area) } {
                        Served::Reply(status, reply) => {
                            back.complete(r.token(), status, reply);
                            *served = served.wrapping_add(1);
                        }
                        Served::InPlace(status, len, rest) => {
                            back.complete_in_place_then(r.token(), status, len, rest);
                            *served = served.wrapping_add(1);
                        }
                        Served::Later => *served = served.wrapping_add(1),
                        Served::Pass => held.push_back(r),
                    }
                }
                complete_flushes(back, local, served);
                if !held.is_empty() || start.elapsed() >= NATIVE_STRETCH {
                    break;
                }
                last = Instant::now();
            }
        }
        // SAFETY: `into` is an argument of this synchronous call, not
        // otherwise borrowed while it runs.
        let out = unsafe { into.as_mut() };
        polytropon_ipc::inbox::pack(back, held, out).map_err(to_napi)
    })
}

/// How many requests takes answered natively since the last call (a
/// busy service whose requests all went that way must not sleep).
#[napi]
pub fn service_served_natively(handle: u32) -> Result<u32> {
    service(handle, |s| Ok(std::mem::take(&mut s.served)))
}

/// Completes request (index, seq): false if its client is gone.
#[napi]
pub fn service_complete(handle: u32, index: u32, seq: u32, status: f64, data: &[u8]) -> Result<bool> {
    service(handle, |s| {
        // Before the reply is posted: a namespace change answered is seen
        // by the client's next request (the native end's remembered
        // directories are resolved again).
        s.local.answered(u64::from(index) << 32 | u64::from(seq));
        Ok(s.back.as_mut().ok_or_else(gone)?.complete((index, seq), status as i64, data))
    })
}

/// The handles a process has open in JavaScript (EMFILE counts both sides).
#[napi]
pub fn service_set_handles_there(handle: u32, pid: u32, n: u32) -> Result<()> {
    service(handle, |s| {
        s.local.set_handles_there(pid, n as usize);
        Ok(())
    })
}

/// Handles a process has open natively.
#[napi]
pub fn service_handles_here(handle: u32, pid: u32) -> Result<u32> {
    service(handle, |s| Ok(s.local.handles_here(pid) as u32))
}


/// Completes the flushes that finished (their tag is the request's token).
fn complete_flushes(back: &mut BackDriver, local: &mut Instances, served: &mut u32) {
    for (tag, status) in local.finished() {
        back.complete(((tag >> 32) as u32, tag as u32), status, &[]);
        *served = served.wrapping_add(1);
    }
}

pub struct Wait {
    waiter: Arc<Waiter>,
    finished: Arc<Mutex<Vec<Done>>>,
    timeout: Duration,
}

impl Task for Wait {
    type Output = bool;
    type JsValue = bool;

    fn compute(&mut self) -> Result<bool> {
        Ok(self.waiter.wait_unless(self.timeout, || self.finished.lock().map(|f| !f.is_empty()).unwrap_or(false)))
    }

    fn resolve(&mut self, _env: Env, v: bool) -> Result<bool> {
        Ok(v)
    }
}
