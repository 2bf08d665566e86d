//! The RCQB algorithm.
//!
//! # The slot state word
//!
//! A 64-bit word whose low half is the futex word (little-endian: the low
//! half sits at the word's address):
//!
//! ```text
//! bits 32..64 pid of the participant holding the slot in WRITING or READING, else 0
//! bit 31      closed (set on every slot by `close`, so sleepers' futex values change)
//! bits 16..30 enqueue credits: enqueue tickets at this slot that were cancelled
//! bits 2..16  dequeue credits: dequeue tickets at this slot that were cancelled
//! bits 0..2   phase: FREE -> WRITING -> FULL -> READING -> FREE
//! ```
//!
//! A ticket, once taken, must be matched: every enqueue ticket at a slot
//! either deposits an item there or is cancelled, and so for dequeues. A
//! timed or `try` operation that gives up first tries to hand its ticket back
//! (CAS the counter from `ticket + 1` to `ticket`: nobody took one after it);
//! if others did, it leaves a *credit* in its slot's state word. An operation
//! of the other type that meets a credit consumes it and takes a new ticket
//! (a *redirect*) instead of waiting for a partner that will never come.
//! Because credits live in the same word as the phase, cancelling and
//! claiming race through one CAS and never both win.
//!
//! A dequeuer never cancels while its slot is WRITING or FULL (an item is
//! there or arriving) and an enqueuer never while it is READING or FREE; that
//! rule is what keeps an acknowledged item from being stranded after `close`.
//!
//! # Orderings
//!
//! Wake-ups: the waker's "RMW the state, then read `waiters`" and the
//! sleeper's "RMW `waiters`, then read the state" must not both miss each
//! other (a lost wake-up); see `wake_waiters` for why that holds, natively
//! and under loom. Payload bytes are published by the Release/AcqRel phase
//! changes and acquired by the claiming CAS.

use std::time::{Duration, Instant};

use crate::layout::{Geometry, Header, Slot};
#[cfg(not(loom))]
use crate::layout::{HEADER_SIZE, SLOT_HEADER_SIZE};
use crate::sync::{self, Ordering::*};
use crate::Error;

const PHASE: u64 = 0b11;
const FREE: u64 = 0;
const WRITING: u64 = 1;
const FULL: u64 = 2;
const READING: u64 = 3;
const DEQ_SHIFT: u32 = 2;
const ENQ_SHIFT: u32 = 16;
const DEQ_ONE: u64 = 1 << DEQ_SHIFT;
const ENQ_ONE: u64 = 1 << ENQ_SHIFT;
const CLOSED: u64 = 1 << 31;
const HOLDER_SHIFT: u32 = 32;
const HOLDER_MASK: u64 = u64::MAX << HOLDER_SHIFT;
/// Most cancelled operations one slot can hold credits for at once. An
/// operation that would exceed it keeps waiting instead of cancelling
/// (except a drain after close, which then returns without one). Cancelled
/// tickets mostly pair off without a credit, so slots stay far from it.
pub const MAX_CREDITS: u32 = (1 << 14) - 1;
/// Spinning turns into yielding after this long.
const YIELD_AFTER_NS: u64 = 2_000;
/// Default spin budget before sleeping on the futex.
pub const DEFAULT_SPIN_NS: u64 = 20_000;
/// How often a sleeper re-checks a slot held by a participant that may have died.
const HOLDER_POLL: Duration = Duration::from_millis(10);
/// After `close`, how long a dequeuer waits for an enqueuer that holds a
/// ticket matching its own. Live enqueuers finish within microseconds of a
/// close; one killed between taking its ticket and depositing never will, and
/// must not keep a draining consumer forever. Giving up is safe: the late
/// enqueuer, if alive after all, meets the credit and fails with `Closed`.
const CLOSE_GRACE: Duration = Duration::from_millis(50);

#[inline]
fn deq_credits(s: u64) -> u32 {
    (s >> DEQ_SHIFT) as u32 & MAX_CREDITS
}
#[inline]
fn enq_credits(s: u64) -> u32 {
    (s >> ENQ_SHIFT) as u32 & MAX_CREDITS
}
#[inline]
fn holder(s: u64) -> u32 {
    (s >> HOLDER_SHIFT) as u32
}

/// Options for [`Rcqb::create`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Number of slots; a power of two.
    pub capacity: u32,
    /// Largest item, in bytes (8 for the `u64` fast path).
    pub item_size: u32,
    /// Name of a POSIX shared-memory segment to create (mode 0600), or `None`
    /// for memory shared only with this process's threads and forked children.
    pub name: Option<String>,
    /// Spin budget, in nanoseconds, before an operation sleeps.
    pub spin_ns: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options { capacity: 1024, item_size: 8, name: None, spin_ns: DEFAULT_SPIN_NS }
    }
}

/// Counters shared by every participant of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Enqueue tickets taken (enqueues, plus retries after a redirect).
    pub enqueue_tickets: u64,
    /// Dequeue tickets taken.
    pub dequeue_tickets: u64,
    /// Operations that found their slot not ready and had to wait.
    pub waits: u64,
    /// Futex sleeps.
    pub sleeps: u64,
    /// Slots recovered from participants that died holding them.
    pub recoveries: u64,
}

#[derive(Clone, Copy)]
enum Wait {
    Forever,
    Until(Instant),
    /// `try_*`: spin for the budget, never sleep for a partner.
    SpinOnly,
    /// `try_dequeue_u64_within`: as SpinOnly, and past the instant give up
    /// outright, even holding a ticket (see that method).
    SpinOnlyBefore(Instant),
}

impl Wait {
    fn is_try(self) -> bool {
        matches!(self, Wait::SpinOnly | Wait::SpinOnlyBefore(_))
    }

    /// True once a `SpinOnlyBefore` operation must be abandoned.
    fn abandon(self) -> bool {
        matches!(self, Wait::SpinOnlyBefore(d) if Instant::now() >= d)
    }
}

enum At {
    Done(usize),
    Redirect,
    Failed(Error),
}

enum Cancel {
    Done,
    /// The state moved under us: re-read and decide again.
    Raced,
    /// The slot holds MAX_CREDITS already: keep waiting.
    Saturated,
}

#[cfg(not(loom))]
struct Storage {
    seg: polytropon_shm::Segment,
}
#[cfg(loom)]
struct Storage {
    header: Box<Header>,
    slots: Box<[Slot]>,
}

/// A handle on an RCQB queue. `Send + Sync`: share it between threads with
/// `Arc`, or open the same named queue from other processes.
pub struct Rcqb {
    storage: Storage,
    geo: Geometry,
    mask: u64,
    spin_ns: u64,
    /// This process's pid, pre-shifted into the holder field.
    holder: u64,
    pid: u32,
}

impl std::fmt::Debug for Rcqb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rcqb").field("geometry", &self.geo).field("name", &self.name()).finish()
    }
}

/// Spin budget accounting: cheap clock reads, one every 32 pauses.
struct Spinner {
    start: Option<Instant>,
    budget_ns: u64,
    n: u32,
}

impl Spinner {
    fn new(budget_ns: u64) -> Spinner {
        Spinner { start: None, budget_ns, n: 0 }
    }
    /// Spins once; false when the budget is spent.
    fn spin(&mut self) -> bool {
        self.n = self.n.wrapping_add(1);
        if cfg!(loom) {
            // One scheduling point stands for the whole spin budget.
            sync::spin_hint();
            return self.n < 2;
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        if self.n % 32 == 0 {
            let spent = start.elapsed().as_nanos() as u64;
            if spent >= self.budget_ns {
                return false;
            }
            // Past the first few microseconds the partner is probably not
            // running: give it the CPU rather than burn the time slice. With
            // more threads than cores this saves most futex sleeps (and the
            // wakes the partner would pay for them).
            if spent >= YIELD_AFTER_NS {
                std::thread::yield_now();
                return true;
            }
        }
        sync::spin_hint();
        true
    }
    fn started(&self) -> bool {
        self.n > 0
    }
    /// Whether the whole budget has been spun away.
    fn exhausted(&self) -> bool {
        if cfg!(loom) {
            return self.n >= 2;
        }
        self.start.is_some_and(|t| t.elapsed().as_nanos() as u64 >= self.budget_ns)
    }
}

impl Rcqb {
    /// Creates a queue, in a new named segment or in anonymous shared memory.
    #[cfg(not(loom))]
    pub fn create(opts: Options) -> Result<Rcqb, Error> {
        let geo = Geometry::new(opts.capacity, opts.item_size)?;
        let seg = match &opts.name {
            Some(n) => polytropon_shm::Segment::create(n, geo.total_size).map_err(|e| Error::from_io(e, n))?,
            None => polytropon_shm::Segment::anonymous(geo.total_size).map_err(Error::Io)?,
        };
        // SAFETY: the segment is fresh, zero-filled, page-aligned and at least HEADER_SIZE long.
        crate::layout::init_header(unsafe { &*(seg.as_ptr() as *const Header) }, &geo);
        Ok(Rcqb::from_parts(Storage { seg }, geo, opts.spin_ns))
    }

    /// Opens an existing named queue, validating its header.
    #[cfg(not(loom))]
    pub fn open(name: &str, spin_ns: u64) -> Result<Rcqb, Error> {
        let seg = polytropon_shm::Segment::open(name).map_err(|e| Error::from_io(e, name))?;
        // A creator writes the magic last; give one that is mid-way about 100 ms.
        if seg.len() >= HEADER_SIZE {
            // SAFETY: the mapping is page-aligned and holds at least a header.
            let magic = unsafe { &(*(seg.as_ptr() as *const Header)).magic };
            for _ in 0..50 {
                if magic.load(Acquire) != 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // SAFETY: the mapping is page-aligned and `seg.len()` bytes long.
        let geo = unsafe { crate::layout::read_geometry(seg.as_ptr(), seg.len()) }?;
        let q = Rcqb::from_parts(Storage { seg }, geo, spin_ns);
        let ns = crate::layout::pid_namespace();
        if ns == 0 || ns != q.header().pid_ns.load(Relaxed) {
            q.header().mixed_pid_ns.store(1, SeqCst);
        }
        Ok(q)
    }

    /// Removes a named queue's name; open handles keep working.
    #[cfg(not(loom))]
    pub fn unlink(name: &str) -> Result<(), Error> {
        polytropon_shm::Segment::unlink(name).map_err(|e| Error::from_io(e, name))
    }

    /// A queue in plain heap memory for loom model checking.
    #[cfg(loom)]
    pub fn create(opts: Options) -> Result<Rcqb, Error> {
        let geo = Geometry::new(opts.capacity, opts.item_size.min(8))?;
        let slots = (0..geo.capacity).map(|_| Slot::new_loom()).collect();
        Ok(Rcqb::from_parts(Storage { header: Box::new(Header::new_loom(&geo)), slots }, geo, opts.spin_ns))
    }

    fn from_parts(storage: Storage, geo: Geometry, spin_ns: u64) -> Rcqb {
        let pid = std::process::id();
        Rcqb { storage, geo, mask: geo.capacity as u64 - 1, spin_ns, holder: (pid as u64) << HOLDER_SHIFT, pid }
    }

    /// The segment's name (`/name`), or `None` for anonymous memory.
    pub fn name(&self) -> Option<&str> {
        #[cfg(not(loom))]
        return self.storage.seg.name();
        #[cfg(loom)]
        None
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.geo.capacity
    }

    /// Largest item in bytes.
    pub fn item_size(&self) -> u32 {
        self.geo.item_size
    }

    /// Sets this handle's spin budget (nanoseconds before sleeping).
    pub fn set_spin_ns(&mut self, spin_ns: u64) {
        self.spin_ns = spin_ns;
    }

    #[inline]
    fn header(&self) -> &Header {
        #[cfg(not(loom))]
        // SAFETY: the segment holds a validated header at offset 0 for as long as `self` lives.
        return unsafe { &*(self.storage.seg.as_ptr() as *const Header) };
        #[cfg(loom)]
        &self.storage.header
    }

    #[inline]
    fn slot(&self, ticket: u64) -> &Slot {
        let i = (ticket & self.mask) as usize;
        #[cfg(not(loom))]
        // SAFETY: i < capacity, and the validated geometry guarantees
        // HEADER_SIZE + capacity * stride <= mapped length; slots are 64-aligned.
        return unsafe { &*(self.storage.seg.as_ptr().add(HEADER_SIZE + i * self.geo.stride) as *const Slot) };
        #[cfg(loom)]
        &self.storage.slots[i]
    }

    /// Whether `close` has been called (by any participant).
    pub fn is_closed(&self) -> bool {
        self.header().closed.load(Acquire) != 0
    }

    /// Items in the queue, approximately: exact when no operation is in flight.
    pub fn len(&self) -> usize {
        let h = self.header();
        let tail = h.tail.load(Acquire);
        let head = h.head.load(Acquire);
        tail.saturating_sub(head).min(self.geo.capacity as u64) as usize
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shared counters.
    pub fn stats(&self) -> Stats {
        let h = self.header();
        Stats {
            enqueue_tickets: h.tail.load(Relaxed),
            dequeue_tickets: h.head.load(Relaxed),
            waits: h.waits.load(Relaxed),
            sleeps: h.sleeps.load(Relaxed),
            recoveries: h.recoveries.load(Relaxed),
        }
    }

    /// Closes the queue for every participant: later enqueues fail with
    /// [`Error::Closed`], blocked enqueuers wake and fail, and dequeuers drain
    /// what was enqueued before, then fail with `Closed`. Idempotent.
    pub fn close(&self) {
        let h = self.header();
        h.closed.store(1, SeqCst);
        for i in 0..self.geo.capacity as u64 {
            let slot = self.slot(i);
            // Changing the futex word itself makes a sleeper that is about to
            // sleep on the old value return at once instead of missing the wake.
            slot.state.fetch_or(CLOSED, SeqCst);
            self.wake_waiters(slot);
        }
    }

    // ---- public operations -------------------------------------------------

    /// Enqueues `item`, blocking while the queue is full.
    pub fn enqueue(&self, item: &[u8]) -> Result<(), Error> {
        self.enqueue_bytes(item, Wait::Forever)
    }

    /// Enqueues `item`, waiting at most `timeout` for room.
    pub fn enqueue_timeout(&self, item: &[u8], timeout: Duration) -> Result<(), Error> {
        self.enqueue_bytes(item, Wait::Until(Instant::now() + timeout))
    }

    /// Enqueues `item` if there is room now; `Ok(false)` if the queue is full.
    pub fn try_enqueue(&self, item: &[u8]) -> Result<bool, Error> {
        Self::try_result(self.enqueue_bytes(item, Wait::SpinOnly))
    }

    /// Dequeues into `out` (at least `item_size` bytes long), blocking while
    /// empty; returns the item's length.
    pub fn dequeue_into(&self, out: &mut [u8]) -> Result<usize, Error> {
        self.dequeue_bytes(out, Wait::Forever)
    }

    /// Like [`dequeue_into`](Self::dequeue_into), waiting at most `timeout`.
    pub fn dequeue_into_timeout(&self, out: &mut [u8], timeout: Duration) -> Result<usize, Error> {
        self.dequeue_bytes(out, Wait::Until(Instant::now() + timeout))
    }

    /// Dequeues into `out` if an item is there now; `Ok(None)` if empty.
    pub fn try_dequeue_into(&self, out: &mut [u8]) -> Result<Option<usize>, Error> {
        Self::try_option(self.dequeue_bytes(out, Wait::SpinOnly))
    }

    /// Fast path for 64-bit items: enqueues `v`, blocking while full.
    pub fn enqueue_u64(&self, v: u64) -> Result<(), Error> {
        self.enqueue_word(v, Wait::Forever)
    }

    /// Enqueues `v`, waiting at most `timeout` for room.
    pub fn enqueue_u64_timeout(&self, v: u64, timeout: Duration) -> Result<(), Error> {
        self.enqueue_word(v, Wait::Until(Instant::now() + timeout))
    }

    /// Enqueues `v` if there is room now.
    pub fn try_enqueue_u64(&self, v: u64) -> Result<bool, Error> {
        Self::try_result(self.enqueue_word(v, Wait::SpinOnly))
    }

    /// Fast path for 64-bit items: dequeues one, blocking while empty.
    pub fn dequeue_u64(&self) -> Result<u64, Error> {
        self.dequeue_word(Wait::Forever)
    }

    /// Dequeues a 64-bit item, waiting at most `timeout`.
    pub fn dequeue_u64_timeout(&self, timeout: Duration) -> Result<u64, Error> {
        self.dequeue_word(Wait::Until(Instant::now() + timeout))
    }

    /// Dequeues a 64-bit item if one is there now.
    pub fn try_dequeue_u64(&self) -> Result<Option<u64>, Error> {
        Self::try_option(self.dequeue_word(Wait::SpinOnly))
    }

    /// [`Rcqb::try_dequeue_u64`] that returns `Ok(None)` within about
    /// `limit` whatever the queue's memory holds. A plain try waits for a
    /// partner holding its slot mid-copy, which garbage written into the
    /// segment can make last forever; past `limit` this one abandons its
    /// ticket instead, and the item later deposited in that slot is stranded
    /// until a drain. Only for consumers whose producers send again what
    /// goes unanswered (the ipc channel's service does).
    pub fn try_dequeue_u64_within(&self, limit: Duration) -> Result<Option<u64>, Error> {
        Self::try_option(self.dequeue_word(Wait::SpinOnlyBefore(Instant::now() + limit)))
    }

    fn try_result(r: Result<(), Error>) -> Result<bool, Error> {
        match r {
            Ok(()) => Ok(true),
            Err(Error::Timeout) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn try_option<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---- payload access ------------------------------------------------------

    #[cfg(not(loom))]
    #[inline]
    fn payload(&self, slot: &Slot) -> *mut u8 {
        // SAFETY: the payload follows the slot header inside the same stride.
        unsafe { (slot as *const Slot as *mut u8).add(SLOT_HEADER_SIZE) }
    }

    fn enqueue_bytes(&self, item: &[u8], wait: Wait) -> Result<(), Error> {
        if item.len() > self.geo.item_size as usize {
            return Err(Error::TooLarge { len: item.len(), max: self.geo.item_size });
        }
        self.enqueue_with(wait, |slot| {
            #[cfg(not(loom))]
            // SAFETY: this thread holds the slot in WRITING; the payload area is
            // item_size >= item.len() bytes and nobody else touches it until FULL.
            unsafe {
                std::ptr::copy_nonoverlapping(item.as_ptr(), self.payload(slot), item.len())
            };
            #[cfg(loom)]
            {
                let mut w = [0u8; 8];
                w[..item.len()].copy_from_slice(item);
                slot.payload.store(u64::from_le_bytes(w), Relaxed);
            }
            item.len() as u32
        })
    }

    fn enqueue_word(&self, v: u64, wait: Wait) -> Result<(), Error> {
        if self.geo.item_size < 8 {
            return Err(Error::TooLarge { len: 8, max: self.geo.item_size });
        }
        self.enqueue_with(wait, |slot| {
            #[cfg(not(loom))]
            // SAFETY: slot held in WRITING; payload is >= 8 bytes and 16-byte aligned.
            unsafe {
                (self.payload(slot) as *mut u64).write(v)
            };
            #[cfg(loom)]
            slot.payload.store(v, Relaxed);
            8
        })
    }

    fn dequeue_bytes(&self, out: &mut [u8], wait: Wait) -> Result<usize, Error> {
        if out.len() < self.geo.item_size as usize {
            return Err(Error::InvalidArgument(format!(
                "output buffer of {} bytes is smaller than the item size of {}",
                out.len(),
                self.geo.item_size
            )));
        }
        self.dequeue_with(wait, |slot, len| {
            #[cfg(not(loom))]
            // SAFETY: slot held in READING; len <= item_size <= out.len().
            unsafe {
                std::ptr::copy_nonoverlapping(self.payload(slot), out.as_mut_ptr(), len)
            };
            #[cfg(loom)]
            out[..len.min(8)].copy_from_slice(&slot.payload.load(Relaxed).to_le_bytes()[..len.min(8)]);
        })
        .map(|(len, ())| len)
    }

    fn dequeue_word(&self, wait: Wait) -> Result<u64, Error> {
        if self.geo.item_size < 8 {
            return Err(Error::InvalidArgument("the u64 fast path needs an item size of at least 8".into()));
        }
        self.dequeue_with(wait, |slot, _len| {
            #[cfg(not(loom))]
            // SAFETY: slot held in READING; payload >= 8 bytes, 16-byte aligned.
            return unsafe { (self.payload(slot) as *const u64).read() };
            #[cfg(loom)]
            slot.payload.load(Relaxed)
        })
        .map(|(_, v)| v)
    }

    // ---- the two stages --------------------------------------------------------

    fn enqueue_with(&self, wait: Wait, mut write: impl FnMut(&Slot) -> u32) -> Result<(), Error> {
        let h = self.header();
        loop {
            if h.closed.load(Acquire) != 0 {
                return Err(Error::Closed);
            }
            let ticket = match wait {
                // A `try` never takes a ticket it can see it cannot use.
                w if w.is_try() => {
                    let t = h.tail.load(Acquire);
                    if t.wrapping_sub(h.head.load(Acquire)) as i64 >= self.geo.capacity as i64 {
                        return Err(Error::Timeout);
                    }
                    if h.tail.compare_exchange(t, t.wrapping_add(1), SeqCst, Relaxed).is_err() {
                        continue;
                    }
                    t
                }
                _ => h.tail.fetch_add(1, SeqCst),
            };
            // Closed between the check above and the ticket: a drainer may
            // already have decided no item comes for this ticket, so withdraw
            // it (SeqCst on both sides: the drainer reads `tail` after it sees
            // the close, we read the close after we took `tail`).
            if h.closed.load(SeqCst) != 0 {
                self.withdraw_enqueue_after_close(ticket);
                return Err(Error::Closed);
            }
            match self.enqueue_at(ticket, wait, &mut write) {
                At::Done(_) => return Ok(()),
                At::Redirect => continue,
                At::Failed(e) => return Err(e),
            }
        }
    }

    fn enqueue_at(&self, ticket: u64, wait: Wait, write: &mut impl FnMut(&Slot) -> u32) -> At {
        let slot = self.slot(ticket);
        let mut spinner = Spinner::new(self.spin_ns);
        loop {
            let s = slot.state.load(SeqCst);
            if deq_credits(s) > 0 {
                // A dequeuer of this slot gave up: take a new ticket instead of
                // depositing an item no dequeuer would come for.
                if slot.state.compare_exchange(s, s - DEQ_ONE, AcqRel, Relaxed).is_ok() {
                    return At::Redirect;
                }
                continue;
            }
            let phase = s & PHASE;
            if phase == FREE {
                // The claim names the holder in the same CAS, so a holder that
                // dies at any instant is identifiable (`recover_if_holder_died`).
                if slot.state.compare_exchange(s, ((s & !HOLDER_MASK) + WRITING) | self.holder, Acquire, Relaxed).is_err() {
                    continue;
                }
                let len = write(slot);
                slot.len.store(len, Relaxed);
                if !self.release(slot, WRITING, FULL) {
                    return At::Failed(Error::Io(std::io::Error::other(
                        "this participant was presumed dead and its slot recovered; the item was not enqueued",
                    )));
                }
                return At::Done(len as usize);
            }
            let closed = s & CLOSED != 0;
            if phase != READING {
                // FULL or WRITING: the slot holds another item. Give up only here.
                let give_up = closed || self.expired(wait, &spinner);
                if give_up {
                    // Hand the ticket back only if the item in our way has no
                    // dequeuer yet. If one holds its ticket and has not come, it
                    // may be dead: leave a credit, so a retry moves on.
                    let h = self.header().head.load(SeqCst);
                    // After close, always leave the credit: it changes the slot's
                    // state, which wakes a drainer counting on our ticket.
                    let hand_back = !closed && h.wrapping_add(self.geo.capacity as u64) <= ticket;
                    match self.cancel(&self.header().tail, ticket, slot, s, ENQ_ONE, hand_back) {
                        Cancel::Done => return At::Failed(if closed { Error::Closed } else { Error::Timeout }),
                        Cancel::Raced => continue,
                        Cancel::Saturated => {} // keep waiting (see MAX_CREDITS)
                    }
                }
            }
            // Odd phases (WRITING, READING) are held mid-copy by a partner.
            self.wait_at(slot, s, phase & 1 == 1 || closed, wait, &mut spinner);
        }
    }

    fn dequeue_with<T>(&self, wait: Wait, mut read: impl FnMut(&Slot, usize) -> T) -> Result<(usize, T), Error> {
        let h = self.header();
        loop {
            if wait.abandon() {
                return Err(Error::Timeout);
            }
            let ticket = match wait {
                w if w.is_try() => {
                    let t = h.head.load(Acquire);
                    if t >= h.tail.load(Acquire) {
                        if h.closed.load(Acquire) == 0 {
                            return Err(Error::Timeout);
                        }
                        return self.sweep(&mut read, wait);
                    }
                    if h.head.compare_exchange(t, t.wrapping_add(1), AcqRel, Relaxed).is_err() {
                        continue;
                    }
                    t
                }
                _ => h.head.fetch_add(1, AcqRel),
            };
            let mut value = None;
            match self.dequeue_at(ticket, wait, &mut |slot, len| value = Some(read(slot, len))) {
                At::Done(len) => return Ok((len, value.expect("read ran"))),
                At::Redirect => continue,
                At::Failed(Error::Closed) => return self.sweep(&mut read, wait),
                At::Failed(e) => return Err(e),
            }
        }
    }

    /// The last step of a drain, once every ticket is spent. A participant
    /// killed while waiting with a dequeue ticket leaves the item of its slot
    /// with no ticket to reach it; after close nothing else will come, so a
    /// draining consumer takes any item still in any slot, and waits for
    /// deposits still in flight, before it reports `Closed`.
    fn sweep<T>(&self, read: &mut impl FnMut(&Slot, usize) -> T, wait: Wait) -> Result<(usize, T), Error> {
        loop {
            if wait.abandon() {
                return Err(Error::Timeout);
            }
            let mut in_flight = false;
            for i in 0..self.geo.capacity as u64 {
                let slot = self.slot(i);
                let s = slot.state.load(SeqCst);
                match s & PHASE {
                    FULL => {
                        let mut value = None;
                        match self.take(slot, s, &mut |slot, len| value = Some(read(slot, len))) {
                            Some(At::Done(len)) => return Ok((len, value.expect("read ran"))),
                            Some(At::Failed(e)) => return Err(e),
                            _ => in_flight = true, // lost the race for it: look again
                        }
                    }
                    WRITING | READING => {
                        self.recover_if_holder_died(slot, s);
                        in_flight = true;
                    }
                    _ => {}
                }
            }
            if !in_flight {
                return Err(Error::Closed);
            }
            std::thread::yield_now();
        }
    }

    /// Takes the item of a FULL slot observed as `s`; None if the claim lost a race.
    fn take(&self, slot: &Slot, s: u64, read: &mut dyn FnMut(&Slot, usize)) -> Option<At> {
        if slot.state.compare_exchange(s, ((s & !HOLDER_MASK) + (READING - FULL)) | self.holder, Acquire, Relaxed).is_err() {
            return None;
        }
        // Bounds-check what another process wrote: never read past the payload.
        let len = slot.len.load(Relaxed);
        let bad = len > self.geo.item_size;
        if !bad {
            read(slot, len as usize);
        }
        if !self.release(slot, READING, FREE) {
            // Someone presumed us dead and put the item back: it is theirs now.
            return Some(At::Failed(Error::Io(std::io::Error::other(
                "this participant was presumed dead and its slot recovered; the item stays queued",
            ))));
        }
        if bad {
            return Some(At::Failed(Error::BadLayout(format!(
                "slot holds an item of {len} bytes, more than the item size {}; item dropped",
                self.geo.item_size
            ))));
        }
        Some(At::Done(len as usize))
    }

    fn dequeue_at(&self, ticket: u64, wait: Wait, read: &mut dyn FnMut(&Slot, usize)) -> At {
        let slot = self.slot(ticket);
        let mut spinner = Spinner::new(self.spin_ns);
        let mut closed_at: Option<Instant> = None;
        loop {
            if wait.abandon() {
                // Abandon the ticket (see try_dequeue_u64_within).
                return At::Failed(Error::Timeout);
            }
            let s = slot.state.load(SeqCst);
            let phase = s & PHASE;
            if phase == FULL {
                match self.take(slot, s, read) {
                    Some(done) => return done,
                    None => continue,
                }
            }
            if enq_credits(s) > 0 {
                if slot.state.compare_exchange(s, s - ENQ_ONE, AcqRel, Relaxed).is_ok() {
                    return At::Redirect;
                }
                continue;
            }
            if phase != WRITING {
                // FREE or READING: no item here for us yet. After close, no item
                // will come unless an enqueuer already holds a ticket >= ours,
                // and that one gets CLOSE_GRACE to deliver it.
                let matched = self.header().tail.load(SeqCst) > ticket;
                let closed = s & CLOSED != 0;
                let drained = closed && !matched;
                let grace_over = closed && matched && closed_at.get_or_insert_with(Instant::now).elapsed() >= CLOSE_GRACE;
                let give_up = drained || grace_over || self.expired(wait, &spinner);
                if give_up {
                    let done = || {
                        if grace_over {
                            At::Redirect
                        } else {
                            At::Failed(if drained { Error::Closed } else { Error::Timeout })
                        }
                    };
                    // After close, an unmatched ticket is closed with a credit,
                    // never handed back: an enqueuer that raced the close and
                    // still takes a ticket here meets the credit in the same
                    // state word it would claim, and fails with Closed instead
                    // of depositing an item no drainer will come back for.
                    if drained {
                        match self.cancel(&self.header().head, ticket, slot, s, DEQ_ONE, false) {
                            Cancel::Raced => continue,
                            // Saturated: the one case a racing enqueuer could
                            // still slip an item in here (see MAX_CREDITS).
                            Cancel::Done | Cancel::Saturated => return done(),
                        }
                    }
                    // No enqueuer holds our ticket's match yet, and ours is the
                    // next one it would get: take that enqueue ticket ourselves,
                    // so the two cancel out (timed consumers on an idle queue
                    // would otherwise pile up credits).
                    if !matched && self.header().tail.compare_exchange(ticket, ticket.wrapping_add(1), SeqCst, Relaxed).is_ok() {
                        return done();
                    }
                    // Hand the ticket back only if no enqueuer holds its match.
                    // If one does and has not delivered, it may be dead: leave a
                    // credit, so a retry (or the rest of a drain) moves on.
                    match self.cancel(&self.header().head, ticket, slot, s, DEQ_ONE, !matched) {
                        Cancel::Done => return done(),
                        Cancel::Raced => continue,
                        Cancel::Saturated => {} // keep waiting (see MAX_CREDITS)
                    }
                }
            }
            self.wait_at(slot, s, phase & 1 == 1 || s & CLOSED != 0, wait, &mut spinner);
        }
    }

    // ---- giving up, waiting, waking ----------------------------------------------

    fn expired(&self, wait: Wait, spinner: &Spinner) -> bool {
        match wait {
            Wait::Forever => false,
            Wait::Until(d) => Instant::now() >= d,
            // Spin first: the partner usually is a few instructions away.
            Wait::SpinOnly | Wait::SpinOnlyBefore(_) => spinner.exhausted(),
        }
    }

    /// Gives a ticket back, or leaves a credit for it.
    fn cancel(&self, counter: &sync::AtomicU64, ticket: u64, slot: &Slot, s: u64, credit: u64, hand_back: bool) -> Cancel {
        let result = if hand_back && counter.compare_exchange(ticket.wrapping_add(1), ticket, SeqCst, Relaxed).is_ok() {
            Cancel::Done
        } else if (if credit == DEQ_ONE { deq_credits(s) } else { enq_credits(s) }) >= MAX_CREDITS {
            Cancel::Saturated
        } else if slot.state.compare_exchange(s, s + credit, SeqCst, Relaxed).is_ok() {
            Cancel::Done
        } else {
            Cancel::Raced
        };
        if matches!(result, Cancel::Done) {
            // A partner sleeping at this slot may now consume the credit, or
            // (after close) see that the ticket it counted on is gone.
            self.wake_waiters(slot);
        }
        result
    }

    /// An enqueue ticket taken just as the queue closed: leave a credit for
    /// it whatever the phase (a drainer consumes it and moves on; if none
    /// comes, nothing waits for it). Not a hand-back: a drainer waiting for
    /// this ticket sleeps on the slot's state, so the state must change.
    fn withdraw_enqueue_after_close(&self, ticket: u64) {
        let tail = &self.header().tail;
        let slot = self.slot(ticket);
        loop {
            let s = slot.state.load(SeqCst);
            match self.cancel(tail, ticket, slot, s, ENQ_ONE, false) {
                Cancel::Raced => continue,
                // Saturated: drainers give up on unmatched tickets after CLOSE_GRACE.
                Cancel::Done | Cancel::Saturated => return,
            }
        }
    }

    /// Ends a holding: `from` (WRITING or READING) to `to`, clearing the
    /// holder. A CAS, not an add: if another participant presumed us dead and
    /// recovered the slot (holder gone), the slot is theirs and is left alone.
    fn release(&self, slot: &Slot, from: u64, to: u64) -> bool {
        let mut s = slot.state.load(Relaxed);
        loop {
            if s & HOLDER_MASK != self.holder || s & PHASE != from {
                return false;
            }
            match slot.state.compare_exchange_weak(s, (s & !(HOLDER_MASK | PHASE)) | to, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.wake_waiters(slot);
        true
    }

    /// Called after every change of a slot's state, always a SeqCst RMW.
    /// "Change state, then read `waiters`" here and "bump `waiters`, then
    /// read state" in `wait_at` must not both miss each other: with every
    /// access SeqCst, the single total order forbids it. Loom models SeqCst
    /// loads as mere acquires, so under loom the read is an RMW instead,
    /// which makes the argument hold under acquire/release alone (both sides'
    /// RMWs on `waiters` are ordered in its modification order) and lets loom
    /// check it. Natively the plain load saves a locked instruction on every
    /// enqueue and dequeue.
    #[inline]
    fn wake_waiters(&self, slot: &Slot) {
        #[cfg(not(loom))]
        let waiters = slot.waiters.load(SeqCst);
        #[cfg(loom)]
        let waiters = slot.waiters.fetch_add(0, AcqRel);
        if waiters != 0 {
            sync::futex_wake_all(&slot.state);
        }
    }

    /// Spins, then sleeps on the slot until its state moves off `s`. `held`
    /// means the wait should end soon by itself (a partner holds the slot
    /// mid-copy, or the queue is closed); the sleeper wakes every HOLDER_POLL
    /// to check whether that partner died or the close grace ran out.
    fn wait_at(&self, slot: &Slot, s: u64, held: bool, wait: Wait, spinner: &mut Spinner) {
        let first = !spinner.started();
        if spinner.spin() {
            if first {
                self.header().waits.fetch_add(1, Relaxed);
            }
            return;
        }
        let mut timeout = match wait {
            Wait::Forever => None,
            Wait::Until(d) => Some(d.saturating_duration_since(Instant::now())),
            // A `try` sleeps only while a partner holds the slot mid-copy.
            w if w.is_try() && !held => {
                std::thread::yield_now();
                return;
            }
            Wait::SpinOnlyBefore(d) => Some(HOLDER_POLL.min(d.saturating_duration_since(Instant::now()))),
            _ => Some(HOLDER_POLL),
        };
        if held {
            if self.recover_if_holder_died(slot, s) {
                return;
            }
            timeout = Some(timeout.map_or(HOLDER_POLL, |t| t.min(HOLDER_POLL)));
        }
        slot.waiters.fetch_add(1, SeqCst);
        if slot.state.load(SeqCst) == s {
            self.header().sleeps.fetch_add(1, Relaxed);
            sync::futex_wait(&slot.state, s as u32, timeout);
        }
        slot.waiters.fetch_sub(1, SeqCst);
    }

    /// A participant killed while holding a slot (WRITING or READING) would
    /// block that slot forever. Return it to a consistent state: an unfinished
    /// write is discarded (it was never acknowledged) and its ticket becomes an
    /// enqueue credit; an unfinished read puts the item back (at-least-once)
    /// and its ticket becomes a dequeue credit.
    fn recover_if_holder_died(&self, slot: &Slot, s: u64) -> bool {
        let pid = holder(s);
        // Pids name processes only within one pid namespace: with participants
        // in several (containers sharing /dev/shm), liveness cannot be judged.
        if pid == 0 || pid == self.pid || self.header().mixed_pid_ns.load(Relaxed) != 0 || sync::process_alive(pid) {
            return false;
        }
        // `s` names a holder that is dead, so it can no longer change the
        // phase: if the CAS below sees `s`, that holding never ended.
        let fixed = match s & PHASE {
            WRITING if enq_credits(s) < MAX_CREDITS => (s - WRITING + ENQ_ONE) & !HOLDER_MASK,
            READING if deq_credits(s) < MAX_CREDITS => (s - (READING - FULL) + DEQ_ONE) & !HOLDER_MASK,
            _ => return false,
        };
        if slot.state.compare_exchange(s, fixed, SeqCst, Relaxed).is_ok() {
            self.header().recoveries.fetch_add(1, Relaxed);
            self.wake_waiters(slot);
            return true;
        }
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
