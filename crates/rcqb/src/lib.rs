//! RCQB, the Relaxed Concurrent Queue Blocking (Kappes & Anastasiadis, ACM
//! TOPC 2022): a bounded multi-producer multi-consumer queue of fixed-size
//! items that lives in memory shared between threads or processes.
//!
//! An operation runs in two stages. Stage 1 takes a ticket with one
//! fetch-and-add on the tail (enqueue) or head (dequeue) counter; the ticket
//! modulo the capacity names a slot. Stage 2 completes at that slot: a CAS on
//! the slot's state word claims it, and operations of one type that meet at
//! one slot complete in whatever order their CASes land. That is the
//! relaxation: an item is dequeued by *some* dequeuer whose ticket maps to its
//! slot, so it can overtake, or be overtaken by, at most the items of the
//! operations pending at that same slot — with `P` producers and `C`
//! consumers an item leaves at most `max(P, C) - 1` laps of the ring away from
//! FIFO order, and in exact FIFO order when a single producer feeds a single
//! consumer. An operation that finds its slot not ready spins for a bounded
//! budget, then sleeps on a *shared* futex on the slot's state word; the
//! other side issues a wake only when the slot's waiter count is non-zero.
//!
//! ```
//! use polytropon_rcqb::{Rcqb, Options};
//! let q = Rcqb::create(Options { capacity: 64, item_size: 8, ..Options::default() }).unwrap();
//! q.enqueue_u64(7).unwrap();
//! assert_eq!(q.dequeue_u64().unwrap(), 7);
//! ```

mod layout;
mod queue;
mod sync;

pub use layout::{Geometry, HEADER_SIZE, LAYOUT_VERSION, MAGIC, MAX_CAPACITY, MAX_ITEM_SIZE};
pub use queue::{Options, Rcqb, Stats, DEFAULT_SPIN_NS, MAX_CREDITS};

use std::fmt;

/// Why a queue operation failed. Each variant maps to one stable error code
/// of the npm package (see [`Error::code`]).
#[derive(Debug)]
pub enum Error {
    /// The queue was closed: no more enqueues; dequeues fail once it is drained.
    Closed,
    /// A timed operation ran out of time.
    Timeout,
    /// The item is longer than the queue's item size.
    TooLarge { len: usize, max: u32 },
    /// No shared-memory segment has that name.
    NotFound(String),
    /// A segment with that name exists already.
    Exists(String),
    /// The segment is not a valid RCQB queue of this layout version.
    BadLayout(String),
    /// An argument is out of range.
    InvalidArgument(String),
    /// Any other operating-system error.
    Io(std::io::Error),
}

impl Error {
    /// The stable code the JS layer exposes as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Closed => "ERR_RCQB_CLOSED",
            Error::Timeout => "ERR_RCQB_TIMEOUT",
            Error::TooLarge { .. } => "ERR_RCQB_ITEM_TOO_LARGE",
            Error::NotFound(_) => "ERR_RCQB_NOT_FOUND",
            Error::Exists(_) => "ERR_RCQB_EXISTS",
            Error::BadLayout(_) => "ERR_RCQB_BAD_LAYOUT",
            Error::InvalidArgument(_) => "ERR_RCQB_INVALID_ARGUMENT",
            Error::Io(_) => "ERR_RCQB_IO",
        }
    }

    #[cfg_attr(loom, allow(dead_code))] // loom builds have no named segments
    fn from_io(e: std::io::Error, name: &str) -> Error {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(name.to_string()),
            std::io::ErrorKind::AlreadyExists => Error::Exists(name.to_string()),
            std::io::ErrorKind::InvalidInput => Error::InvalidArgument(e.to_string()),
            _ => Error::Io(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => write!(f, "queue is closed"),
            Error::Timeout => write!(f, "operation timed out"),
            Error::TooLarge { len, max } => write!(f, "item of {len} bytes exceeds the queue's item size of {max} bytes"),
            Error::NotFound(n) => write!(f, "no queue named {n:?}"),
            Error::Exists(n) => write!(f, "a queue named {n:?} already exists"),
            Error::BadLayout(m) => write!(f, "not a usable RCQB queue: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}
