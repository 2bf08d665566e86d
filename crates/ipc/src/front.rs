//! The front driver, in the application: one per thread (it owns one
//! request buffer); a call is copy in, post, spin then sleep, copy out.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::fence;
use std::time::{Duration, Instant};

use polytropon_rcqb::Rcqb;
use polytropon_smo_copy::{copy_raw, Method};

use crate::layout::{queue_name, Channel, STOPPED};
use crate::os::{futex_wait, futex_wake_all, ProcessWatch};
use crate::{Descriptor, Error, LIVENESS_CHECK, YIELD_AFTER, REQ_CONTINUE, REQ_MORE, RESERVED_OPCODES, RESP_ACK, RESP_MORE};

/// Options of [`FrontDriver::attach`].
#[derive(Clone, Debug)]
pub struct FrontOptions {
    /// How long to spin for a reply before sleeping.
    pub spin: Duration,
    /// Request queue (core group) to post to; default: this CPU's.
    pub queue: Option<u32>,
}

impl Default for FrontOptions {
    fn default() -> FrontOptions {
        FrontOptions { spin: Duration::from_micros(50), queue: None }
    }
}

/// A client's end of a channel: one request buffer, one request at a time.
pub struct FrontDriver {
    ch: std::sync::Arc<Channel>,
    /// Every request queue of the channel; `queue` is the one posted to.
    queues: Vec<Rcqb>,
    queue: usize,
    /// The descriptor of the request in flight, for re-posting.
    posted: u64,
    name: String,
    index: u32,
    owner: u64,
    seq: u32,
    service: ProcessWatch,
    spin: Duration,
}

impl FrontDriver {
    /// Attaches to the channel `name`: claims a free request buffer.
    pub fn attach(name: &str, opts: FrontOptions) -> Result<FrontDriver, Error> {
        let ch = Channel::open(name)?;
        let h = ch.header();
        if h.state.load(Acquire) == STOPPED {
            return Err(Error::ServiceGone(format!("the service of {name} has stopped")));
        }
        let service = ProcessWatch::new(h.service_pid.load(Relaxed) as i32);
        if !service.is_alive() {
            return Err(Error::ServiceGone(format!("the service of {name} (pid {}) is not running", service.pid())));
        }
        let k = match opts.queue {
            Some(k) if k < ch.geo.queue_count => k,
            Some(k) => return Err(Error::InvalidArgument(format!("queue {k} does not exist; the channel has {}", ch.geo.queue_count))),
            // SAFETY: sched_getcpu has no preconditions; -1 on failure.
            None => (unsafe { libc::sched_getcpu() }.max(0) as u32) % ch.geo.queue_count,
        };
        let queues = (0..ch.geo.queue_count)
            .map(|j| Rcqb::open(&queue_name(name, j), 0).map_err(|e| Error::from_queue(e, name)))
            .collect::<Result<Vec<_>, _>>()?;
        let pid = u64::from(std::process::id());
        // Claim the first free buffer; its generation counts owners, so a
        // descriptor of a previous owner never matches the new one.
        for index in 0..ch.geo.buffer_count {
            let b = ch.buffer(index);
            let cur = b.owner.load(Relaxed);
            if cur as u32 != 0 {
                continue;
            }
            let mine = ((cur >> 32) + 1) << 32 | pid;
            if b.owner.compare_exchange(cur, mine, AcqRel, Relaxed).is_ok() {
                let seq = b.req_seq.load(Relaxed);
                b.waiting.store(0, Relaxed);
                return Ok(FrontDriver {
                    index,
                    owner: mine,
                    seq,
                    queues,
                    queue: k as usize,
                    posted: 0,
                    name: name.to_string(),
                    service,
                    spin: opts.spin,
                    ch: std::sync::Arc::new(ch),
                });
            }
        }
        Err(Error::NoBuffers(ch.geo.buffer_count))
    }

    /// Largest request or reply fragment: the buffer's data area.
    pub fn buffer_size(&self) -> usize {
        self.ch.geo.buffer_size as usize
    }

    /// Sends a request and waits for its reply, which replaces `reply`'s
    /// contents. Returns the service's status (by convention `-errno` on failure).
    pub fn call(&mut self, opcode: u32, payload: &[u8], reply: &mut Vec<u8>) -> Result<i64, Error> {
        if let Some(refused) = self.send(opcode, payload)? {
            reply.clear();
            return Ok(refused);
        }
        self.finish(reply)
    }

    /// [`FrontDriver::call`], with the reply copied straight out of the
    /// channel into `out` when it is one fragment that fits; else it
    /// replaces `rest`'s contents. Returns the status and the reply's
    /// length (in `out` if at most `out.len()`, else in `rest`).
    pub fn call_into(&mut self, opcode: u32, payload: &[u8], out: &mut [u8], rest: &mut Vec<u8>) -> Result<(i64, usize), Error> {
        if let Some(refused) = self.send(opcode, payload)? {
            rest.clear();
            return Ok((refused, 0));
        }
        self.finish_into(out, rest)
    }

    /// [`FrontDriver::call`], with the reply copied straight out of the
    /// channel, fragment by fragment, into two places: its first
    /// `head.len()` bytes into `head` (a header), the rest into `body` (a
    /// read's data, into the caller's own buffer), with no copy in between.
    /// Returns the status and the reply's length. A reply longer than
    /// `head` and `body` together is a protocol error (the caller said how
    /// much it asked for); the driver stays usable.
    pub fn call_split(&mut self, opcode: u32, payload: &[u8], head: &mut [u8], body: &mut [u8]) -> Result<(i64, usize), Error> {
        if let Some(refused) = self.send(opcode, payload)? {
            return Ok((refused, 0));
        }
        let (mut at, room) = (0, head.len() + body.len());
        let status = self.fragments(|src, len| {
            if at + len > room {
                return Err(Error::Protocol(format!("a reply of more than {} bytes, {room} were room", at + len)));
            }
            let to_head = head.len().saturating_sub(at).min(len);
            let to_body = len - to_head;
            // SAFETY: the source is the fragment's `len` bytes in our
            // buffer; `at + len` fits `head` then `body` (checked above), so
            // each copy stays within its slice (bytes go to `body` only once
            // `head` is full: `at + to_head >= head.len()` then). Plain
            // copies: the caller reads the reply next, on this core.
            unsafe {
                if to_head > 0 {
                    copy_raw(head.as_mut_ptr().add(at), src, to_head, Method::Smc);
                }
                if to_body > 0 {
                    copy_raw(body.as_mut_ptr().add(at + to_head - head.len()), src.add(to_head), to_body, Method::Smc);
                }
            }
            at += len;
            Ok(())
        })?;
        Ok((status, at))
    }

    /// Posts a request in fragments of the buffer's size, each but the last
    /// acknowledged; `Some(status)` if the service refused it mid-way.
    fn send(&mut self, opcode: u32, payload: &[u8]) -> Result<Option<i64>, Error> {
        if opcode >= RESERVED_OPCODES {
            return Err(Error::InvalidArgument(format!("opcode {opcode:#x} is reserved by the channel")));
        }
        let room = self.buffer_size();
        let mut chunks = payload.chunks(room).peekable();
        if payload.is_empty() {
            self.post(opcode, &[], 0)?;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.post(opcode, chunk, if last { 0 } else { REQ_MORE })?;
            if !last {
                let (status, flags) = self.wait()?;
                if flags & RESP_ACK == 0 {
                    // Refused mid-way (too large, or a violation): its status.
                    return Ok(Some(status));
                }
            }
        }
        Ok(None)
    }

    /// Posts a request that fits the buffer (one fragment) and returns at
    /// once; [`FrontDriver::poll`] or [`FrontDriver::finish`] then collect
    /// the reply. For callers that must not block (an event loop).
    pub fn start(&mut self, opcode: u32, payload: &[u8]) -> Result<(), Error> {
        if opcode >= RESERVED_OPCODES {
            return Err(Error::InvalidArgument(format!("opcode {opcode:#x} is reserved by the channel")));
        }
        if payload.len() > self.buffer_size() {
            return Err(Error::InvalidArgument(format!("start takes requests up to the buffer size ({}); use call", self.buffer_size())));
        }
        self.post(opcode, payload, 0)
    }

    /// The reply to the request posted last, if it is there whole: never
    /// waits. A reply in fragments is `None` too: collecting it means
    /// waiting for the service to send each next fragment, which is
    /// [`FrontDriver::finish`]'s to do, off a thread that must not block
    /// (an event loop whose thread may be the service's own).
    pub fn poll(&mut self, reply: &mut Vec<u8>) -> Result<Option<i64>, Error> {
        if !self.replied_whole() {
            return Ok(None);
        }
        self.finish(reply).map(Some)
    }

    /// [`FrontDriver::poll`] with [`FrontDriver::finish_into`]'s reply.
    pub fn poll_into(&mut self, out: &mut [u8], rest: &mut Vec<u8>) -> Result<Option<(i64, usize)>, Error> {
        if !self.replied_whole() {
            return Ok(None);
        }
        self.finish_into(out, rest).map(Some)
    }

    /// Whether the reply is there and is all in one fragment.
    fn replied_whole(&self) -> bool {
        let b = self.ch.buffer(self.index);
        b.done_seq.load(Acquire) == self.seq && b.resp_flags.load(Relaxed) & RESP_MORE == 0
    }

    /// Waits for the reply to the request posted last; it replaces `reply`'s contents.
    pub fn finish(&mut self, reply: &mut Vec<u8>) -> Result<i64, Error> {
        reply.clear();
        self.collect(reply)
    }

    /// Waits for the reply to the request posted last, as
    /// [`FrontDriver::call_into`] returns it.
    pub fn finish_into(&mut self, out: &mut [u8], rest: &mut Vec<u8>) -> Result<(i64, usize), Error> {
        rest.clear();
        let (status, flags) = self.wait()?;
        let len = self.reply_len()?;
        if flags & RESP_MORE == 0 && len <= out.len() {
            // SAFETY: `out` has room for `len` bytes; the source is inside our buffer.
            unsafe { copy_raw(out.as_mut_ptr(), self.ch.data(self.index), len, Method::Smc) };
            return Ok((status, len));
        }
        self.read_reply(rest)?;
        if flags & RESP_MORE == 0 {
            return Ok((status, len));
        }
        self.post(0, &[], REQ_CONTINUE)?;
        let status = self.collect(rest)?;
        let len = rest.len();
        if len <= out.len() {
            // Fragments that fit after all: where the caller looks.
            out[..len].copy_from_slice(rest);
            rest.clear();
        }
        Ok((status, len))
    }

    /// Appends the reply's fragments to `reply`, from the next one the
    /// service sends to the last; returns the status.
    fn collect(&mut self, reply: &mut Vec<u8>) -> Result<i64, Error> {
        self.fragments(|src, len| {
            // SAFETY: the fragment's `len` bytes in our buffer.
            unsafe { append(reply, src, len) };
            Ok(())
        })
    }

    /// Hands each of the reply's fragments (where it starts in our buffer,
    /// its length), from the next one the service sends to the last, to
    /// `take`, asking for the next while there is more; returns the status.
    fn fragments(&mut self, mut take: impl FnMut(*const u8, usize) -> Result<(), Error>) -> Result<i64, Error> {
        loop {
            let (status, flags) = self.wait()?;
            take(self.ch.data(self.index), self.reply_len()?)?;
            if flags & RESP_MORE == 0 {
                return Ok(status);
            }
            self.post(0, &[], REQ_CONTINUE)?;
        }
    }

    fn post(&mut self, opcode: u32, chunk: &[u8], flags: u32) -> Result<(), Error> {
        let b = self.ch.buffer(self.index);
        // SAFETY: chunk.len() <= buffer_size; the buffer is ours and the
        // service reads it only after the descriptor below.
        unsafe { copy_raw(self.ch.data(self.index), chunk.as_ptr(), chunk.len(), Method::Auto) };
        self.seq = self.seq.wrapping_add(1);
        b.opcode.store(opcode, Relaxed);
        b.req_len.store(chunk.len() as u32, Relaxed);
        b.req_flags.store(flags, Relaxed);
        // Release: the service that reads this sequence reads the request.
        b.req_seq.store(self.seq, Release);
        let d = Descriptor { index: self.index, generation: (self.owner >> 32) as u16, seq: self.seq };
        self.posted = d.pack();
        let mut timeouts = 0u32;
        loop {
            match self.queues[self.queue].enqueue_u64_timeout(self.posted, LIVENESS_CHECK) {
                Ok(()) => break,
                Err(polytropon_rcqb::Error::Timeout) => {
                    self.check_service()?;
                    // Full for 100 ms: the service is busy, or this queue
                    // was scribbled on and lost its way. Try the next one.
                    timeouts += 1;
                    if timeouts.is_multiple_of(5) {
                        self.queue = (self.queue + 1) % self.queues.len();
                    }
                }
                Err(polytropon_rcqb::Error::Closed) => {
                    // A service closes its queues only after marking the
                    // channel stopped; a queue that says closed while the
                    // service runs was scribbled on. Use the next one.
                    self.check_service()?;
                    self.queue = (self.queue + 1) % self.queues.len();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(Error::from_queue(e, &self.name)),
            }
        }
        self.ring_doorbell();
        Ok(())
    }

    /// Wakes the service if it sleeps: Dekker with BackDriver::take.
    fn ring_doorbell(&self) {
        fence(SeqCst);
        let h = self.ch.header();
        if h.sleeping.load(SeqCst) != 0 {
            h.doorbell.fetch_add(1, Release);
            futex_wake_all(&h.doorbell);
        }
    }

    /// Waits for the reply to the last request posted; (status, flags).
    fn wait(&mut self) -> Result<(i64, u32), Error> {
        let ch = self.ch.clone();
        let b = ch.buffer(self.index);
        let start = Instant::now();
        let mut n = 0u32;
        while b.done_seq.load(Acquire) != self.seq {
            n = n.wrapping_add(1);
            if n.is_multiple_of(64) {
                let waited = start.elapsed();
                if waited >= self.spin {
                    self.sleep_until_done()?;
                    break;
                }
                // Past a plain round trip, the service may be waiting for
                // this core (more threads spin than there are cores): let
                // it run. Where nothing else waits, a yield returns at once.
                if waited >= YIELD_AFTER {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
        Ok((b.status.load(Relaxed), b.resp_flags.load(Relaxed)))
    }

    fn sleep_until_done(&mut self) -> Result<(), Error> {
        let ch = self.ch.clone();
        let b = ch.buffer(self.index);
        b.waiting.store(1, SeqCst);
        // A descriptor can be lost (a queue scribbled on by a faulty client):
        // post it again, on the next queue, after 100 ms, 200 ms, 400 ms...
        // of silence. The service drops the copies of a request it took.
        let mut repost_after = Duration::from_millis(100);
        let mut last_post = Instant::now();
        let result = loop {
            let seen = b.done_seq.load(SeqCst);
            if seen == self.seq {
                break Ok(());
            }
            futex_wait(&b.done_seq, seen, LIVENESS_CHECK);
            if b.done_seq.load(Acquire) != self.seq {
                if let Err(e) = self.check_service() {
                    break Err(e);
                }
                if last_post.elapsed() >= repost_after {
                    self.queue = (self.queue + 1) % self.queues.len();
                    let _ = self.queues[self.queue].try_enqueue_u64(self.posted);
                    self.ring_doorbell();
                    last_post = Instant::now();
                    repost_after = (repost_after * 2).min(Duration::from_secs(2));
                }
            }
        };
        b.waiting.store(0, Relaxed);
        fence(Acquire);
        result
    }

    fn check_service(&self) -> Result<(), Error> {
        if self.ch.header().state.load(Acquire) == STOPPED {
            return Err(Error::ServiceGone(format!("the service of {} has stopped", self.name)));
        }
        if !self.service.is_alive() {
            return Err(Error::ServiceGone(format!("the service of {} (pid {}) exited", self.name, self.service.pid())));
        }
        Ok(())
    }

    /// The length of the reply fragment in our buffer, checked.
    fn reply_len(&self) -> Result<usize, Error> {
        let len = self.ch.buffer(self.index).resp_len.load(Relaxed) as usize;
        if len > self.buffer_size() {
            return Err(Error::Protocol(format!("reply length {len} is beyond the request buffer")));
        }
        Ok(len)
    }

    fn read_reply(&self, reply: &mut Vec<u8>) -> Result<(), Error> {
        // SAFETY: the reply's bytes in our buffer.
        unsafe { append(reply, self.ch.data(self.index), self.reply_len()?) };
        Ok(())
    }
}

/// Appends `len` bytes from `src` to `reply`.
///
/// # Safety
/// `src` is valid for reads of `len` bytes (a reply in the channel).
unsafe fn append(reply: &mut Vec<u8>, src: *const u8, len: usize) {
    let at = reply.len();
    reply.reserve(len);
    // SAFETY: `reply` has room for len more bytes (reserved), which the
    // copy initialises before set_len; `src` as the caller promises.
    unsafe {
        // Plain copy: the caller reads its reply next, on this core.
        copy_raw(reply.as_mut_ptr().add(at), src, len, Method::Smc);
        reply.set_len(at + len);
    }
}

impl std::fmt::Debug for FrontDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontDriver").field("channel", &self.name).field("buffer", &self.index).finish()
    }
}

impl Drop for FrontDriver {
    fn drop(&mut self) {
        // Release the buffer (generation kept): the service sees the owner
        // change on its next reap and forgets this client.
        let b = self.ch.buffer(self.index);
        let _ = b.owner.compare_exchange(self.owner, self.owner & !0xFFFF_FFFF, AcqRel, Relaxed);
    }
}
