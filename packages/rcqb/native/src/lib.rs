//! Node-API glue for RCQB. Thin on purpose: the TS layer validates options and
//! turns the `CODE: message` reasons raised here into `RcqbError`s.

// `cargo test --workspace` builds the glue without Node: the exported
// functions then have no caller, which is not dead code.
#![cfg_attr(test, allow(dead_code))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{AbortSignal, AsyncTask, Buffer};
use napi::{Env, Error, Result, Status, Task};
use napi_derive::napi;
use polytropon_rcqb::{Options, Rcqb};

mod fast;

pub(crate) fn to_napi(e: polytropon_rcqb::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}

pub(crate) fn ms(v: f64) -> Duration {
    Duration::from_secs_f64((v.max(0.0) / 1000.0).min(1e9))
}

/// Anonymous queues are reachable from other worker threads of this process
/// through a registry id (the `.node` library, and so this static, is loaded
/// once per process). Weak: the registry never keeps a queue alive.
fn registry() -> &'static Mutex<HashMap<u32, Weak<Rcqb>>> {
    static R: OnceLock<Mutex<HashMap<u32, Weak<Rcqb>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Statistics of a queue, shared by all its participants.
#[napi(object)]
pub struct NativeStats {
    pub enqueue_tickets: f64,
    pub dequeue_tickets: f64,
    pub waits: f64,
    pub sleeps: f64,
    pub recoveries: f64,
}

#[napi]
pub struct NativeQueue {
    inner: Arc<Rcqb>,
    /// Key in the cross-thread registry of anonymous queues (`attach`).
    id: u32,
    /// This thread's handle on the fast path (`fast.rs`).
    handle: u32,
}

impl Drop for NativeQueue {
    fn drop(&mut self) {
        fast::unregister(self.handle);
    }
}

#[napi]
impl NativeQueue {
    #[napi(factory)]
    pub fn create(capacity: u32, item_size: u32, name: Option<String>, spin_ns: f64) -> Result<NativeQueue> {
        let q = Rcqb::create(Options { capacity, item_size, name, spin_ns: spin_ns as u64 }).map_err(to_napi)?;
        NativeQueue::register(Arc::new(q))
    }

    #[napi(factory)]
    pub fn open(name: String, spin_ns: f64) -> Result<NativeQueue> {
        NativeQueue::register(Arc::new(Rcqb::open(&name, spin_ns as u64).map_err(to_napi)?))
    }

    /// Attaches to an anonymous queue of this process by its registry id.
    #[napi(factory)]
    pub fn attach(id: u32) -> Result<NativeQueue> {
        let q = registry().lock().unwrap().get(&id).and_then(Weak::upgrade);
        match q {
            Some(inner) => Ok(NativeQueue { handle: fast::register(inner.clone())?, inner, id }),
            None => Err(Error::new(Status::GenericFailure, format!("ERR_RCQB_NOT_FOUND: no live queue with id {id} in this process"))),
        }
    }

    #[napi]
    pub fn unlink(name: String) -> Result<()> {
        Rcqb::unlink(&name).map_err(to_napi)
    }

    fn register(inner: Arc<Rcqb>) -> Result<NativeQueue> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) as u32;
        let handle = fast::register(inner.clone())?;
        let mut r = registry().lock().unwrap();
        r.retain(|_, w| w.strong_count() > 0);
        r.insert(id, Arc::downgrade(&inner));
        Ok(NativeQueue { inner, id, handle })
    }

    /// This thread's id for the `q*` fast-path functions.
    #[napi(getter)]
    pub fn handle(&self) -> u32 {
        self.handle
    }

    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }
    #[napi(getter)]
    pub fn name(&self) -> Option<String> {
        self.inner.name().map(str::to_string)
    }
    #[napi(getter)]
    pub fn capacity(&self) -> u32 {
        self.inner.capacity()
    }
    #[napi(getter)]
    pub fn item_size(&self) -> u32 {
        self.inner.item_size()
    }
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.inner.len() as u32
    }
    #[napi]
    pub fn stats(&self) -> NativeStats {
        let s = self.inner.stats();
        NativeStats {
            enqueue_tickets: s.enqueue_tickets as f64,
            dequeue_tickets: s.dequeue_tickets as f64,
            waits: s.waits as f64,
            sleeps: s.sleeps as f64,
            recoveries: s.recoveries as f64,
        }
    }
    #[napi]
    pub fn close(&self) {
        self.inner.close()
    }

    /// Enqueues off the JS thread.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn enqueue_async(&self, item: &[u8], timeout_ms: f64, signal: Option<AbortSignal>) -> AsyncTask<Blocking> {
        Blocking::task(&self.inner, Op::Enqueue(item.to_vec()), timeout_ms, signal)
    }

    /// Dequeues off the JS thread; resolves to a Buffer of the item.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn dequeue_async(&self, timeout_ms: f64, signal: Option<AbortSignal>) -> AsyncTask<Blocking> {
        Blocking::task(&self.inner, Op::Dequeue, timeout_ms, signal)
    }
}

pub enum Op {
    Enqueue(Vec<u8>),
    Dequeue,
}

/// A blocking operation run on the libuv pool. It waits in slices so an
/// abort (a flag set from the JS thread) is noticed within one slice.
pub struct Blocking {
    queue: Arc<Rcqb>,
    op: Op,
    deadline: Option<Instant>,
    aborted: Arc<AtomicBool>,
}

const SLICE: Duration = Duration::from_millis(20);

impl Blocking {
    fn task(queue: &Arc<Rcqb>, op: Op, timeout_ms: f64, signal: Option<AbortSignal>) -> AsyncTask<Blocking> {
        let aborted = Arc::new(AtomicBool::new(false));
        if let Some(s) = &signal {
            let flag = aborted.clone();
            s.on_abort(move || flag.store(true, Ordering::Relaxed));
        }
        let deadline = (timeout_ms >= 0.0).then(|| Instant::now() + ms(timeout_ms));
        AsyncTask::with_optional_signal(Blocking { queue: queue.clone(), op, deadline, aborted }, signal)
    }
}

impl Task for Blocking {
    type Output = Option<Vec<u8>>;
    type JsValue = Option<Buffer>;

    fn compute(&mut self) -> Result<Self::Output> {
        let mut out = match self.op {
            Op::Dequeue => vec![0u8; self.queue.item_size() as usize],
            Op::Enqueue(_) => Vec::new(),
        };
        loop {
            if self.aborted.load(Ordering::Relaxed) {
                return Err(Error::new(Status::Cancelled, "ERR_RCQB_ABORTED: the operation was aborted".to_string()));
            }
            let slice = match self.deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(to_napi(polytropon_rcqb::Error::Timeout));
                    }
                    left.min(SLICE)
                }
                None => SLICE,
            };
            let r = match &self.op {
                Op::Enqueue(item) => self.queue.enqueue_timeout(item, slice).map(|()| None),
                Op::Dequeue => self.queue.dequeue_into_timeout(&mut out, slice).map(|n| {
                    out.truncate(n);
                    Some(std::mem::take(&mut out))
                }),
            };
            match r {
                Err(polytropon_rcqb::Error::Timeout) => continue,
                r => return r.map_err(to_napi),
            }
        }
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.map(Buffer::from))
    }
}

