//! The Polytropon shared-memory channel between applications and their I/O
//! service: the user-level path that replaces the kernel (or FUSE) between
//! them.
//!
//! One channel per service endpoint: a header, **request buffers** (one per
//! application thread: a data area for requests and replies, and the
//! completion word the thread waits on) and **request queues** (RCQB, one per
//! core group) that carry 8-byte descriptors naming a buffer and a request
//! sequence. A client ([`FrontDriver`]) claims a buffer, writes a request into
//! it, posts its descriptor, spins and then sleeps on the completion word; the
//! service ([`BackDriver`]) takes descriptors in batches, validates everything
//! it reads from shared memory, copies the request out, and later writes the
//! reply and wakes the client. Requests and replies larger than a buffer go
//! in fragments, transparently.
//!
//! Faults: a client that dies is seen through its pidfd and its buffer is
//! reclaimed ([`BackDriver::reap`]); a service that dies makes waiting
//! clients fail within [`LIVENESS_CHECK`] with [`Error::ServiceGone`].
//!
//! Threat model: the service trusts nothing a client wrote (descriptors,
//! lengths, sequences, fragments are all checked, and payloads are copied out
//! before they are parsed), so a buggy or hostile client gets error replies
//! or is ignored while the service goes on. Clients of one channel share its
//! memory, so a client that writes into another client's buffer can spoil
//! that client's in-flight request; channels are per pool (one tenant), and
//! segments are mode 0600, so another user cannot attach at all.

mod back;
mod front;
pub mod inbox;
mod layout;
mod os;

pub use back::{BackDriver, BackOptions, Refusals, Request, Waiter};
pub use front::{FrontDriver, FrontOptions};
pub use layout::{Geometry, LAYOUT_VERSION, MAX_BUFFERS, MAX_BUFFER_SIZE, MAX_QUEUES};

use std::fmt;
use std::time::Duration;

/// How long either side spins (for a reply, for a request) before it also
/// yields its core now and then: longer than a plain round trip here, so
/// that a spinning thread lets a peer waiting for its core run when there
/// are more threads than cores.
pub(crate) const YIELD_AFTER: Duration = Duration::from_micros(5);

/// How often a waiting client checks that its service still runs.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(20);

/// Opcodes at and above this are the channel's own (fragments); handlers
/// never see them and clients may not use them.
pub const RESERVED_OPCODES: u32 = 0xFFFF_0000;

/// Request flag: more fragments of this request follow.
pub(crate) const REQ_MORE: u32 = 1;
/// Request flag: send the next fragment of the reply.
pub(crate) const REQ_CONTINUE: u32 = 2;
/// Reply flag: more fragments of this reply follow.
pub(crate) const RESP_MORE: u32 = 1;
/// Reply flag: a request fragment was received; send the next.
pub(crate) const RESP_ACK: u32 = 2;

/// Why a channel operation failed; each variant has a stable code.
#[derive(Debug)]
pub enum Error {
    /// No channel has that name (no service runs there).
    NotFound(String),
    /// A channel with that name exists already.
    Exists(String),
    /// The channel belongs to another user (segments are mode 0600).
    AccessDenied(String),
    /// The segment is not a channel of a layout this build reads.
    BadLayout(String),
    /// An argument or option is out of range.
    InvalidArgument(String),
    /// Every request buffer of the channel is taken.
    NoBuffers(u32),
    /// The service exited or stopped; the request may or may not have run.
    ServiceGone(String),
    /// A reply broke the channel's rules (a service bug, or memory scribbled on).
    Protocol(String),
    /// Any other operating-system error.
    Io(std::io::Error),
}

impl Error {
    /// The stable code the JS layer exposes as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "ERR_IPC_NOT_FOUND",
            Error::Exists(_) => "ERR_IPC_EXISTS",
            Error::AccessDenied(_) => "ERR_IPC_ACCESS_DENIED",
            Error::BadLayout(_) => "ERR_IPC_BAD_LAYOUT",
            Error::InvalidArgument(_) => "ERR_IPC_INVALID_ARGUMENT",
            Error::NoBuffers(_) => "ERR_IPC_NO_BUFFERS",
            Error::ServiceGone(_) => "ERR_IPC_SERVICE_GONE",
            Error::Protocol(_) => "ERR_IPC_PROTOCOL",
            Error::Io(_) => "ERR_IPC_IO",
        }
    }

    fn from_io(e: std::io::Error, name: &str) -> Error {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(name.to_string()),
            std::io::ErrorKind::AlreadyExists => Error::Exists(name.to_string()),
            std::io::ErrorKind::PermissionDenied => Error::AccessDenied(name.to_string()),
            std::io::ErrorKind::InvalidInput => Error::InvalidArgument(e.to_string()),
            _ => Error::Io(e),
        }
    }

    fn from_queue(e: polytropon_rcqb::Error, name: &str) -> Error {
        match e {
            polytropon_rcqb::Error::Closed => Error::ServiceGone(format!("{name}: the service closed its request queue")),
            polytropon_rcqb::Error::NotFound(n) => Error::NotFound(n),
            polytropon_rcqb::Error::Exists(n) => Error::Exists(n),
            polytropon_rcqb::Error::BadLayout(m) => Error::BadLayout(m),
            polytropon_rcqb::Error::InvalidArgument(m) => Error::InvalidArgument(m),
            polytropon_rcqb::Error::Io(e) => Error::Io(e),
            other => Error::Io(std::io::Error::other(other.to_string())),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(n) => write!(f, "no channel named {n} (is its I/O service running?)"),
            Error::Exists(n) => write!(f, "a channel named {n} exists already"),
            Error::AccessDenied(n) => write!(f, "the channel {n} belongs to another user"),
            Error::BadLayout(m) | Error::InvalidArgument(m) | Error::ServiceGone(m) | Error::Protocol(m) => f.write_str(m),
            Error::NoBuffers(n) => write!(f, "all {n} request buffers of the channel are attached; raise its buffer count"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A descriptor: which buffer (and which owner of it) posted which request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub index: u32,
    /// Low 16 bits of the buffer's owner generation.
    pub generation: u16,
    pub seq: u32,
}

impl Descriptor {
    pub fn pack(self) -> u64 {
        u64::from(self.generation) << 48 | u64::from(self.index & 0xFFFF) << 32 | u64::from(self.seq)
    }

    pub fn unpack(v: u64) -> Descriptor {
        Descriptor { index: (v >> 32) as u32 & 0xFFFF, generation: (v >> 48) as u16, seq: v as u32 }
    }
}

/// A client's id as the service sees it: buffer index and owner generation,
/// below 2^53 so that JavaScript numbers hold it exactly.
pub fn client_id(index: u32, generation: u32) -> u64 {
    u64::from(index) << 32 | u64::from(generation & 0x1F_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_round_trip() {
        for d in [
            Descriptor { index: 0, generation: 0, seq: 0 },
            Descriptor { index: 65535, generation: u16::MAX, seq: u32::MAX },
            Descriptor { index: 7, generation: 3, seq: 1 << 31 },
        ] {
            assert_eq!(Descriptor::unpack(d.pack()), d);
        }
    }

    #[test]
    fn client_ids_fit_javascript_numbers() {
        assert!(client_id(MAX_BUFFERS - 1, u32::MAX) < 1 << 53);
    }
}
