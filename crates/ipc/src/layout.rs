//! The channel segment: a header, then `buffer_count` request buffers. The
//! request queues are RCQB queues in segments of their own, named after the
//! channel (`<name>.q0`, `<name>.q1`, ...).
//!
//! Everything is position-independent and versioned. Clients validate the
//! geometry once, when they attach; the service never reads geometry back
//! from shared memory (it keeps its own copy), and it treats every word a
//! client can write as untrusted.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};

use crate::Error;

pub const MAGIC: u64 = u64::from_le_bytes(*b"PTRNIPC\0");
pub const LAYOUT_VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 4096;
/// Control lines in front of each buffer's data area.
pub const BUFFER_HEADER_SIZE: usize = 256;
pub const MAX_QUEUES: u32 = 64;
pub const MAX_BUFFERS: u32 = 1 << 16;
pub const MAX_BUFFER_SIZE: u32 = 1 << 30;

/// Service states, in `Header::state`.
pub const RUNNING: u32 = 1;
pub const STOPPED: u32 = 2;

#[repr(C)]
pub struct Header {
    /// Written last by the creator (Release), checked first by clients.
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub queue_count: AtomicU32,
    pub queue_capacity: AtomicU32,
    pub buffer_count: AtomicU32,
    pub buffer_size: AtomicU32,
    pub service_pid: AtomicU32,
    /// Random per service start: a restarted service makes a new channel.
    pub epoch: AtomicU64,
    pub state: AtomicU32,
    _pad0: [u8; 84],
    /// Futex the service sleeps on when idle; clients bump it to wake it.
    pub doorbell: AtomicU32,
    /// Non-zero while the service is (about to be) asleep on `doorbell`.
    pub sleeping: AtomicU32,
    _pad1: [u8; 120],
}

/// A request buffer's control lines. Line 0 is ownership, line 1 is written
/// by its client, line 2 by the service.
#[repr(C)]
pub struct BufferHeader {
    /// `generation << 32 | pid`; pid 0 = free. Claimed and released by CAS.
    pub owner: AtomicU64,
    _pad0: [u8; 56],
    /// Sequence of the request the client last posted.
    pub req_seq: AtomicU32,
    pub opcode: AtomicU32,
    pub req_len: AtomicU32,
    pub req_flags: AtomicU32,
    _pad1: [u8; 48],
    /// Futex: the service stores the completed request's sequence here.
    pub done_seq: AtomicU32,
    /// Non-zero while the client is (about to be) asleep on `done_seq`.
    pub waiting: AtomicU32,
    pub resp_len: AtomicU32,
    pub resp_flags: AtomicU32,
    pub status: AtomicI64,
    _pad2: [u8; 104],
}

const _: () = assert!(std::mem::size_of::<Header>() == 256);
const _: () = assert!(std::mem::size_of::<BufferHeader>() == BUFFER_HEADER_SIZE);

/// The shape of a channel, fixed when the service creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Request queues, one per core group (1..=64).
    pub queue_count: u32,
    /// Slots per request queue, a power of two.
    pub queue_capacity: u32,
    /// Request buffers: how many client threads can attach at once.
    pub buffer_count: u32,
    /// Bytes of each buffer's data area (a multiple of 64, at least 4096).
    pub buffer_size: u32,
}

impl Geometry {
    /// Checks every field's range; `InvalidArgument` says which is off.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.queue_count == 0 || self.queue_count > MAX_QUEUES {
            return bad(format!("queue count {} is not in 1..={MAX_QUEUES}", self.queue_count));
        }
        if self.buffer_count == 0 || self.buffer_count > MAX_BUFFERS {
            return bad(format!("buffer count {} is not in 1..={MAX_BUFFERS}", self.buffer_count));
        }
        if self.buffer_size < 4096 || self.buffer_size > MAX_BUFFER_SIZE || !self.buffer_size.is_multiple_of(64) {
            return bad(format!("buffer size {} is not a multiple of 64 in 4096..={MAX_BUFFER_SIZE}", self.buffer_size));
        }
        polytropon_rcqb::Geometry::new(self.queue_capacity, 8).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(())
    }

    /// Bytes from one buffer to the next (control lines and data).
    pub fn stride(&self) -> usize {
        BUFFER_HEADER_SIZE + self.buffer_size as usize
    }

    /// Bytes of the channel segment.
    pub fn total_size(&self) -> usize {
        HEADER_SIZE + self.buffer_count as usize * self.stride()
    }
}

/// A mapped channel segment with its geometry.
pub struct Channel {
    pub seg: polytropon_shm::Segment,
    pub geo: Geometry,
}

impl Channel {
    pub fn header(&self) -> &Header {
        // SAFETY: the segment is page-aligned and at least HEADER_SIZE long
        // (checked at create/open); Header is all atomics.
        unsafe { &*(self.seg.as_ptr() as *const Header) }
    }

    /// Buffer `i`'s control lines; `i < buffer_count` (callers check).
    pub fn buffer(&self, i: u32) -> &BufferHeader {
        debug_assert!(i < self.geo.buffer_count);
        // SAFETY: i < buffer_count, so the header lies within the segment,
        // 64-aligned (HEADER_SIZE and the stride are multiples of 64).
        unsafe { &*(self.seg.as_ptr().add(HEADER_SIZE + i as usize * self.geo.stride()) as *const BufferHeader) }
    }

    /// Start of buffer `i`'s data area (`buffer_size` bytes).
    pub fn data(&self, i: u32) -> *mut u8 {
        debug_assert!(i < self.geo.buffer_count);
        // SAFETY: as in `buffer`; the data area follows its header.
        unsafe { self.seg.as_ptr().add(HEADER_SIZE + i as usize * self.geo.stride() + BUFFER_HEADER_SIZE) }
    }

    /// Maps an existing channel and validates its header against its length.
    pub fn open(name: &str) -> Result<Channel, Error> {
        let seg = polytropon_shm::Segment::open(name).map_err(|e| Error::from_io(e, name))?;
        if seg.len() < HEADER_SIZE {
            return Err(Error::BadLayout(format!("{name}: {} bytes is too short for a channel", seg.len())));
        }
        // SAFETY: page-aligned, at least HEADER_SIZE long, all atomics.
        let h = unsafe { &*(seg.as_ptr() as *const Header) };
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        // The creator writes the magic last; give one that is mid-way ~100 ms.
        for _ in 0..50 {
            if h.magic.load(Acquire) != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if h.magic.load(Acquire) != MAGIC {
            return Err(Error::BadLayout(format!("{name} is not a Polytropon channel")));
        }
        let version = h.version.load(Relaxed);
        if version != LAYOUT_VERSION {
            return Err(Error::BadLayout(format!("{name} has layout version {version}; this build reads {LAYOUT_VERSION}")));
        }
        let geo = Geometry {
            queue_count: h.queue_count.load(Relaxed),
            queue_capacity: h.queue_capacity.load(Relaxed),
            buffer_count: h.buffer_count.load(Relaxed),
            buffer_size: h.buffer_size.load(Relaxed),
        };
        geo.validate().map_err(|e| Error::BadLayout(format!("{name}: {e}")))?;
        if geo.total_size() > seg.len() {
            return Err(Error::BadLayout(format!("{name}: geometry needs {} bytes, segment has {}", geo.total_size(), seg.len())));
        }
        Ok(Channel { seg, geo })
    }
}

/// Name of request queue `k` of channel `name`.
pub fn queue_name(name: &str, k: u32) -> String {
    format!("{}.q{k}", name.strip_prefix('/').unwrap_or(name))
}
