//! The back driver, in the I/O service: creates the channel, takes requests
//! in batches, completes them, and reclaims the buffers of clients that died.

use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polytropon_rcqb::Rcqb;
use polytropon_smo_copy::{copy_raw, Method};

use crate::layout::{queue_name, Channel, Geometry, Header, LAYOUT_VERSION, MAGIC, RUNNING, STOPPED};
use crate::os::{futex_wait, futex_wake_all, ProcessWatch};
use crate::{client_id, Descriptor, Error, REQ_CONTINUE, REQ_MORE, RESERVED_OPCODES, RESP_ACK, RESP_MORE};

/// Longest a poll of one queue may take, whatever its memory holds.
const POLL_LIMIT: Duration = Duration::from_millis(2);

/// Options of [`BackDriver::create`].
#[derive(Clone, Debug)]
pub struct BackOptions {
    /// The channel's shape.
    pub geometry: Geometry,
    /// Largest request (all fragments together) the service accepts; larger
    /// ones are answered with `-EMSGSIZE` and their fragments dropped.
    pub max_request: usize,
    /// Whole requests longer than this stay in the client's buffer instead
    /// of being copied out ([`Request::in_place`]): for data the service
    /// moves without parsing (a write's payload), read straight from shared
    /// memory. `usize::MAX`: always copy.
    pub copy_limit: usize,
}

impl Default for BackOptions {
    fn default() -> BackOptions {
        BackOptions {
            geometry: Geometry { queue_count: 1, queue_capacity: 1024, buffer_count: 64, buffer_size: 1 << 20 },
            max_request: 64 << 20,
            copy_limit: usize::MAX,
        }
    }
}

/// A request for the service's handler: whole (fragments joined), copied out
/// of shared memory, from a client that owned its buffer when it was taken.
#[derive(Debug)]
pub struct Request {
    /// The client: see [`crate::client_id`].
    pub client: u64,
    /// The process the client said it is, when it attached (the owner word
    /// of its buffer). Checked alive, not authenticated: every process
    /// attached to a channel runs as the channel's user (segments are 0600).
    pub pid: u32,
    pub(crate) index: u32,
    pub(crate) seq: u32,
    /// What the client asked for (below [`crate::RESERVED_OPCODES`]).
    pub opcode: u32,
    /// The request, copied out of shared memory (empty when `in_place`).
    pub payload: Vec<u8>,
    /// Non-zero: the request's length, left in the client's buffer (see
    /// [`BackOptions::copy_limit`] and [`BackDriver::request_area`]).
    pub in_place: usize,
}

impl Request {
    /// The token [`BackDriver::complete`] takes: buffer index and sequence.
    pub fn token(&self) -> (u32, u32) {
        (self.index, self.seq)
    }
}

/// What the service knows of the client owning a buffer, kept in its own
/// memory: nothing here is read back from the shared segment.
struct Client {
    /// The owner word the buffer had when this client was first seen.
    owner: u64,
    watch: ProcessWatch,
    /// Sequence of the last request taken (replays and stale ones are dropped).
    last_seq: u32,
    /// The request handed to the handler and not completed yet.
    in_flight: Option<u32>,
    /// Fragments received so far, and the opcode of the first.
    assembling: Vec<u8>,
    assembling_opcode: Option<u32>,
    /// The rest of a reply larger than the buffer, and its status.
    reply_rest: Option<(Vec<u8>, usize, i64)>,
}

/// Counters of what the back driver refused, for `stats()` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Descriptors naming no buffer, a free one, another owner or an old sequence.
    pub stale_descriptors: u64,
    /// Requests breaking the rules (lengths, flags, a second request in flight).
    pub protocol_errors: u64,
}

/// The service's end of a channel.
pub struct BackDriver {
    ch: Arc<Channel>,
    queues: Arc<Vec<Rcqb>>,
    name: String,
    clients: Vec<Option<Client>>,
    /// Clients whose buffer a new client took before `reap` saw them go.
    replaced: Vec<u64>,
    max_request: usize,
    copy_limit: usize,
    next_queue: usize,
    refusals: Refusals,
    closed: bool,
}

fn errno_status(errno: i32) -> i64 {
    -i64::from(errno)
}

impl BackDriver {
    /// Creates the channel `name` (segments mode 0600). A channel left by a
    /// service that died is replaced; one whose service runs is `Exists`.
    pub fn create(name: &str, opts: BackOptions) -> Result<BackDriver, Error> {
        let geo = opts.geometry;
        geo.validate()?;
        let seg = match polytropon_shm::Segment::create(name, geo.total_size()) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && Self::is_abandoned(name) => {
                let _ = polytropon_shm::Segment::unlink(name);
                polytropon_shm::Segment::create(name, geo.total_size())
            }
            r => r,
        }
        .map_err(|e| Error::from_io(e, name))?;
        let mut queues = Vec::new();
        for k in 0..geo.queue_count {
            let qname = queue_name(name, k);
            // A queue left by a service that crashed before unlinking: ours now.
            let _ = Rcqb::unlink(&qname);
            let opts = polytropon_rcqb::Options { capacity: geo.queue_capacity, item_size: 8, name: Some(qname.clone()), spin_ns: 0 };
            match Rcqb::create(opts) {
                Ok(q) => queues.push(q),
                Err(e) => {
                    let _ = polytropon_shm::Segment::unlink(name);
                    for j in 0..k {
                        let _ = Rcqb::unlink(&queue_name(name, j));
                    }
                    return Err(Error::from_queue(e, &qname));
                }
            }
        }
        let ch = Arc::new(Channel { seg, geo });
        // SAFETY: fresh, zero-filled, page-aligned, at least HEADER_SIZE long.
        let h = unsafe { &*(ch.seg.as_ptr() as *const Header) };
        h.version.store(LAYOUT_VERSION, Relaxed);
        h.queue_count.store(geo.queue_count, Relaxed);
        h.queue_capacity.store(geo.queue_capacity, Relaxed);
        h.buffer_count.store(geo.buffer_count, Relaxed);
        h.buffer_size.store(geo.buffer_size, Relaxed);
        h.service_pid.store(std::process::id(), Relaxed);
        h.epoch.store(epoch(), Relaxed);
        h.state.store(RUNNING, Relaxed);
        // Release: a client that sees the magic sees every field above.
        h.magic.store(MAGIC, Release);
        Ok(BackDriver {
            clients: (0..geo.buffer_count).map(|_| None).collect(),
            replaced: Vec::new(),
            ch,
            queues: Arc::new(queues),
            name: name.to_string(),
            max_request: opts.max_request,
            copy_limit: opts.copy_limit,
            next_queue: 0,
            refusals: Refusals::default(),
            closed: false,
        })
    }

    /// Whether the channel `name` was left by a service that is gone.
    fn is_abandoned(name: &str) -> bool {
        match Channel::open(name) {
            Ok(ch) => {
                let h = ch.header();
                h.state.load(Acquire) == STOPPED || !ProcessWatch::new(h.service_pid.load(Relaxed) as i32).is_alive()
            }
            // Not a readable channel at all (half-made, another layout): only
            // a service of ours could have made it; take it over.
            Err(Error::BadLayout(_)) => true,
            Err(_) => false,
        }
    }

    /// The channel's shape, as created.
    pub fn geometry(&self) -> Geometry {
        self.ch.geo
    }

    /// What the driver refused so far.
    pub fn refusals(&self) -> Refusals {
        self.refusals
    }

    /// Takes up to `max` requests: polls the queues, spinning up to `spin`
    /// while none is there, then sleeps up to `sleep` (zero: never sleeps).
    /// Returns what it has when either runs out; may return none.
    pub fn take(&mut self, max: usize, spin: Duration, sleep: Duration) -> Vec<Request> {
        let mut out = Vec::new();
        let start = Instant::now();
        let mut slept = false;
        loop {
            self.poll(max, &mut out);
            if !out.is_empty() || self.closed {
                return out;
            }
            let waited = start.elapsed();
            if waited < spin {
                // Past a plain round trip with nothing to do, a client may
                // be waiting for this core (more threads than cores): let
                // it run. Where nothing else waits, a yield returns at once.
                if waited >= crate::YIELD_AFTER {
                    std::thread::yield_now();
                }
                std::hint::spin_loop();
                continue;
            }
            if slept || sleep.is_zero() {
                return out;
            }
            // Dekker with clients: announce the sleep, then look once more;
            // a client posts, then checks `sleeping` (both sides fence).
            let bell = self.ch.header().doorbell.load(Acquire);
            self.ch.header().sleeping.store(1, SeqCst);
            fence(SeqCst);
            self.poll(max, &mut out);
            if out.is_empty() {
                futex_wait(&self.ch.header().doorbell, bell, sleep);
            }
            self.ch.header().sleeping.store(0, Relaxed);
            slept = true;
        }
    }

    /// One pass over the queues, starting where the last one stopped.
    fn poll(&mut self, max: usize, out: &mut Vec<Request>) {
        let n = self.queues.len();
        let mut empty_in_a_row = 0;
        while out.len() < max && empty_in_a_row < n {
            let k = self.next_queue % n;
            // An empty queue's try_dequeue takes a ticket and hands it back
            // (~0.5 us); its length is two loads. A descriptor posted just
            // now is seen on the next pass.
            // Bounded: garbage a client wrote into a queue's memory must not keep
            // the service here (clients post again what goes unanswered).
            let found = if self.queues[k].is_empty() { Ok(None) } else { self.queues[k].try_dequeue_u64_within(POLL_LIMIT) };
            match found {
                Ok(Some(v)) => {
                    empty_in_a_row = 0;
                    if let Some(r) = self.accept(Descriptor::unpack(v)) {
                        out.push(r);
                    }
                }
                _ => {
                    empty_in_a_row += 1;
                    self.next_queue = self.next_queue.wrapping_add(1);
                }
            }
        }
    }

    /// Validates a descriptor against the buffer it names; answers channel
    /// traffic (fragments, reply continuations, violations) itself, and
    /// returns whole requests for the handler.
    fn accept(&mut self, d: Descriptor) -> Option<Request> {
        if d.index >= self.ch.geo.buffer_count {
            self.refusals.stale_descriptors += 1;
            return None;
        }
        let b = self.ch.buffer(d.index);
        let owner = b.owner.load(Acquire);
        let (pid, generation) = (owner as u32, (owner >> 32) as u32);
        if pid == 0 || generation as u16 != d.generation || b.req_seq.load(Acquire) != d.seq {
            self.refusals.stale_descriptors += 1;
            return None;
        }
        let slot = &mut self.clients[d.index as usize];
        if let Some(old) = slot.take_if(|c| c.owner != owner) {
            // The buffer changed hands since: the old client is gone, and
            // `reap` reports it (the service may hold things of its).
            self.replaced.push(client_id(d.index, (old.owner >> 32) as u32));
        }
        let client = slot.get_or_insert_with(|| Client {
            owner,
            watch: ProcessWatch::new(pid as i32),
            last_seq: d.seq.wrapping_sub(1),
            in_flight: None,
            assembling: Vec::new(),
            assembling_opcode: None,
            reply_rest: None,
        });
        if (d.seq.wrapping_sub(client.last_seq) as i32) <= 0 {
            self.refusals.stale_descriptors += 1;
            return None;
        }
        client.last_seq = d.seq;
        // From here on the request is current: it gets an answer.
        let (opcode, len, flags) = (b.opcode.load(Relaxed), b.req_len.load(Relaxed), b.req_flags.load(Relaxed));
        let violation = if client.in_flight.is_some() {
            Some("a second request while one is in flight")
        } else if len > self.ch.geo.buffer_size {
            Some("request length beyond the buffer")
        } else if flags & !(REQ_MORE | REQ_CONTINUE) != 0 || flags == REQ_MORE | REQ_CONTINUE {
            Some("unknown request flags")
        } else if opcode >= RESERVED_OPCODES {
            Some("reserved opcode")
        } else if flags & REQ_CONTINUE != 0 && client.reply_rest.is_none() {
            Some("continuation without a reply in progress")
        } else {
            None
        };
        if violation.is_some() {
            self.refusals.protocol_errors += 1;
            let in_flight = self.clients[d.index as usize].as_ref().and_then(|c| c.in_flight);
            if in_flight.is_none() {
                // Never answer over a request still in flight: its own
                // completion will overwrite the buffer anyway.
                self.write_reply(d.index, d.seq, errno_status(libc::EPROTO), &[], 0);
            }
            return None;
        }
        let client = self.clients[d.index as usize].as_mut().expect("client state exists");
        let whole = flags == 0 && client.assembling.is_empty();
        if whole && len as usize > self.copy_limit {
            client.reply_rest = None;
            client.in_flight = Some(d.seq);
            let client = client_id(d.index, generation);
            return Some(Request { client, pid: owner as u32, index: d.index, seq: d.seq, opcode, payload: Vec::new(), in_place: len as usize });
        }
        // Copy out before looking at the bytes: the client could change them.
        let mut chunk = Vec::with_capacity(len as usize);
        // SAFETY: len <= buffer_size, inside the buffer's data area; `chunk`
        // has the capacity and is initialised by the copy before set_len. A
        // client racing its own buffer only spoils its own request.
        unsafe {
            // Plain copy: this thread reads the request next, so it should
            // land in cache (streaming is for data another core reads).
            copy_raw(chunk.as_mut_ptr(), self.ch.data(d.index), len as usize, Method::Smc);
            chunk.set_len(len as usize);
        }
        if flags & REQ_CONTINUE != 0 {
            let (rest, at, status) = client.reply_rest.take().expect("checked above");
            self.send_reply_chunk(d.index, d.seq, status, rest, at);
            return None;
        }
        client.reply_rest = None;
        if client.assembling.len() + chunk.len() > self.max_request {
            client.assembling = Vec::new();
            client.assembling_opcode = None;
            self.refusals.protocol_errors += 1;
            self.write_reply(d.index, d.seq, errno_status(libc::EMSGSIZE), &[], 0);
            return None;
        }
        let first_opcode = *client.assembling_opcode.get_or_insert(opcode);
        if flags & REQ_MORE != 0 {
            client.assembling.extend_from_slice(&chunk);
            self.write_reply(d.index, d.seq, 0, &[], RESP_ACK);
            return None;
        }
        let payload = if client.assembling.is_empty() {
            chunk
        } else {
            let mut all = std::mem::take(&mut client.assembling);
            all.extend_from_slice(&chunk);
            all
        };
        client.assembling_opcode = None;
        client.in_flight = Some(d.seq);
        Some(Request { client: client_id(d.index, generation), pid: owner as u32, index: d.index, seq: d.seq, opcode: first_opcode, payload, in_place: 0 })
    }

    /// Completes a request taken from [`BackDriver::take`]: writes `status`
    /// and `data` into the client's buffer (in fragments if larger) and wakes
    /// it. Returns false, doing nothing, if that client is gone or the token
    /// is not its request in flight.
    pub fn complete(&mut self, token: (u32, u32), status: i64, data: &[u8]) -> bool {
        let (index, seq) = token;
        let Some(Some(client)) = self.clients.get_mut(index as usize) else { return false };
        if client.in_flight != Some(seq) || self.ch.buffer(index).owner.load(Acquire) != client.owner {
            return false;
        }
        let room = self.ch.geo.buffer_size as usize;
        if data.len() <= room {
            client.in_flight = None;
            self.write_reply(index, seq, status, data, 0);
            return true;
        }
        // Larger than the buffer: the first fragment straight from `data`,
        // only the rest kept (a copy of the whole reply was a fresh
        // allocation, page faults included, of every large reply).
        // SAFETY: `room` bytes into the data area of this client's buffer,
        // whose request is in flight (checked above).
        unsafe { copy_raw(self.ch.data(index), data.as_ptr(), room, Method::Auto) };
        self.complete_in_place_then(token, status, room, &data[room..])
    }

    /// The data area of a request in flight: `(start, buffer size)`. It holds
    /// an in-place request's bytes, and a reply can be built there for
    /// [`BackDriver::complete_in_place`]. The client shares this memory:
    /// read it as untrusted bytes that may change underneath (copy what must
    /// be parsed), and only between `take` and completion.
    pub fn request_area(&self, token: (u32, u32)) -> Option<(*mut u8, usize)> {
        let (index, seq) = token;
        let client = self.clients.get(index as usize)?.as_ref()?;
        (client.in_flight == Some(seq)).then(|| (self.ch.data(index), self.ch.geo.buffer_size as usize))
    }

    /// Completes a request whose reply is the first `len` bytes already in
    /// its data area (see [`BackDriver::request_area`]): no copy. An echo
    /// replies with its request this way. False if the token is not current
    /// or `len` is beyond the buffer.
    pub fn complete_in_place(&mut self, token: (u32, u32), status: i64, len: usize) -> bool {
        self.complete_in_place_then(token, status, len, &[])
    }

    /// As [`BackDriver::complete_in_place`], for a reply that goes on past
    /// the buffer: its first `len` bytes are in the data area (`len` is then
    /// the whole buffer) and `rest` follows in fragments, as a reply given to
    /// [`BackDriver::complete`] would. A read larger than the buffer lands
    /// mostly in place this way, and only its tail is copied.
    pub fn complete_in_place_then(&mut self, token: (u32, u32), status: i64, len: usize, rest: &[u8]) -> bool {
        let (index, seq) = token;
        let room = self.ch.geo.buffer_size as usize;
        let Some(Some(client)) = self.clients.get_mut(index as usize) else { return false };
        if client.in_flight != Some(seq) || len > room || (!rest.is_empty() && len != room) || self.ch.buffer(index).owner.load(Acquire) != client.owner {
            return false;
        }
        client.in_flight = None;
        let more = !rest.is_empty();
        if more {
            client.reply_rest = Some((rest.to_vec(), 0, status));
        }
        self.publish_reply(index, seq, status, len, if more { RESP_MORE } else { 0 });
        true
    }

    /// Writes the part of `reply` from `at` that fits, keeping any rest.
    fn send_reply_chunk(&mut self, index: u32, seq: u32, status: i64, reply: Vec<u8>, at: usize) {
        let room = self.ch.geo.buffer_size as usize;
        let end = reply.len().min(at + room);
        let more = end < reply.len();
        self.write_reply(index, seq, status, &reply[at..end], if more { RESP_MORE } else { 0 });
        if let Some(c) = self.clients[index as usize].as_mut() {
            c.reply_rest = more.then_some((reply, end, status));
        }
    }

    fn write_reply(&self, index: u32, seq: u32, status: i64, data: &[u8], flags: u32) {
        // SAFETY: data.len() <= buffer_size (callers cut it), inside the
        // data area; the client reads it only after seeing `done_seq`.
        unsafe { copy_raw(self.ch.data(index), data.as_ptr(), data.len(), Method::Auto) };
        self.publish_reply(index, seq, status, data.len(), flags);
    }

    /// Publishes a reply of `len` bytes already in the data area.
    fn publish_reply(&self, index: u32, seq: u32, status: i64, len: usize, flags: u32) {
        let b = self.ch.buffer(index);
        b.resp_len.store(len as u32, Relaxed);
        b.resp_flags.store(flags, Relaxed);
        b.status.store(status, Relaxed);
        // SeqCst store then SeqCst load: Dekker with the client, which sets
        // `waiting` and then re-reads `done_seq` before it sleeps.
        b.done_seq.store(seq, SeqCst);
        if b.waiting.load(SeqCst) != 0 {
            futex_wake_all(&b.done_seq);
        }
    }

    /// Finds clients that exited (or detached) and frees their buffers.
    /// Returns their ids, so the service can close what they left open.
    pub fn reap(&mut self) -> Vec<u64> {
        let mut gone = std::mem::take(&mut self.replaced);
        for i in 0..self.ch.geo.buffer_count {
            let b = self.ch.buffer(i);
            let owner = b.owner.load(Acquire);
            match &self.clients[i as usize] {
                Some(c) if c.owner == owner && c.watch.is_alive() => continue,
                Some(c) => {
                    gone.push(client_id(i, (c.owner >> 32) as u32));
                    // Free the buffer if the dead client still holds it
                    // (a clean detach released it already).
                    let _ = b.owner.compare_exchange(c.owner, c.owner & !0xFFFF_FFFF, AcqRel, Relaxed);
                    self.clients[i as usize] = None;
                }
                None => {
                    // Owned but never used: still reclaim it if its owner died.
                    let pid = owner as u32;
                    if pid != 0 && !ProcessWatch::new(pid as i32).is_alive() {
                        let _ = b.owner.compare_exchange(owner, owner & !0xFFFF_FFFF, AcqRel, Relaxed);
                    }
                }
            }
        }
        gone
    }

    /// Stops the service's end: new requests are refused, waiting clients
    /// fail with `ServiceGone`, and the names are removed.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.ch.header().state.store(STOPPED, SeqCst);
        self.waiter().wake();
        for q in self.queues.iter() {
            q.close();
        }
        for i in 0..self.ch.geo.buffer_count {
            futex_wake_all(&self.ch.buffer(i).done_seq);
        }
        let _ = polytropon_shm::Segment::unlink(&self.name);
        for k in 0..self.queues.len() as u32 {
            let _ = Rcqb::unlink(&queue_name(&self.name, k));
        }
    }

    /// A handle that waits for requests without taking them, on another
    /// thread than the one that takes and completes (an async service).
    pub fn waiter(&self) -> Waiter {
        Waiter { ch: self.ch.clone(), queues: self.queues.clone() }
    }
}

impl Drop for BackDriver {
    fn drop(&mut self) {
        self.close();
    }
}

/// A value that differs between service starts on one host.
fn epoch() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(40)
}

/// Waits for requests on a channel (see [`BackDriver::waiter`]).
pub struct Waiter {
    ch: Arc<Channel>,
    queues: Arc<Vec<Rcqb>>,
}

impl Waiter {
    /// Sleeps until a request queue is non-empty, the service closes, or
    /// `timeout` passes; true when requests wait.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.wait_unless(timeout, || false)
    }

    /// [`Waiter::wait`], except that it does not sleep while `ready`
    /// holds: work of the service's own that another thread finishes and
    /// announces with [`Waiter::wake`] after making `ready` true (no wake
    /// is lost between the check and the sleep).
    pub fn wait_unless(&self, timeout: Duration, ready: impl Fn() -> bool) -> bool {
        let pending = || self.queues.iter().any(|q| !q.is_empty());
        let h = self.ch.header();
        let bell = h.doorbell.load(Acquire);
        h.sleeping.store(1, SeqCst);
        fence(SeqCst);
        if !pending() && !ready() && h.state.load(Acquire) != STOPPED {
            futex_wait(&h.doorbell, bell, timeout);
        }
        h.sleeping.store(0, Relaxed);
        pending()
    }

    /// Wakes a thread in [`Waiter::wait`] (used when closing, and by
    /// [`Waiter::wait_unless`]'s other threads).
    pub fn wake(&self) {
        let h = self.ch.header();
        h.doorbell.fetch_add(1, Release);
        futex_wake_all(&h.doorbell);
    }
}
