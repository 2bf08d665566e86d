//! The queue's memory layout, and where it lives.
//!
//! ```text
//! offset 0    Header (256 bytes: immutable geometry, then tail, head and the
//!             counters, each on its own cache line)
//! offset 256  slot 0, slot 1, ... slot N-1, each `stride` bytes (a multiple of 128):
//!             state u64 | waiters u32 | len u32 | payload[item_size]
//! ```
//! Everything is addressed by offset from the segment base, so each process
//! may map the segment anywhere. The geometry is read once, validated, and
//! cached in the handle: later scribbles over the header by a buggy or hostile
//! participant cannot make this process index outside its mapping.

use crate::sync::{AtomicU32, AtomicU64};
use crate::Error;

/// `PTRNRCQB`, little-endian: identifies an RCQB segment.
pub const MAGIC: u64 = u64::from_le_bytes(*b"PTRNRCQB");
/// Bumped on any change of the layout below.
pub const LAYOUT_VERSION: u32 = 2;
/// Bytes before slot 0.
pub const HEADER_SIZE: usize = 256;
/// Bytes of a slot before its payload.
pub const SLOT_HEADER_SIZE: usize = 16;
/// Largest item accepted, in bytes.
pub const MAX_ITEM_SIZE: u32 = 64 * 1024;
/// Largest capacity accepted (slots).
pub const MAX_CAPACITY: u32 = 1 << 24;
/// Slots are padded to 128 bytes, not 64: neighbouring slots are worked on
/// by different threads at once, and the adjacent-line prefetcher pulls lines
/// in pairs. Measured with two threads: RCQB went from 72-89% to 93-94% of
/// LCRQ's throughput (which pads its cells to 128 bytes too).
const SLOT_ALIGN: usize = 128;

#[repr(C)]
pub(crate) struct Header {
    /// Written last at creation (release), so an opener never sees a half-made header.
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub capacity: AtomicU32,
    pub item_size: AtomicU32,
    pub slot_stride: AtomicU32,
    pub total_size: AtomicU64,
    pub closed: AtomicU32,
    /// Set when a participant from another pid namespace opens the queue:
    /// dead-holder recovery is then off (pids are not comparable).
    pub mixed_pid_ns: AtomicU32,
    /// Inode of the creator's pid namespace.
    pub pid_ns: AtomicU64,
    _pad0: [u64; 2],
    /// Enqueue tickets issued (stage 1 of an enqueue).
    pub tail: AtomicU64,
    _pad1: [u64; 7],
    /// Dequeue tickets issued (stage 1 of a dequeue).
    pub head: AtomicU64,
    _pad2: [u64; 7],
    /// Operations that had to wait at their slot.
    pub waits: AtomicU64,
    /// Futex sleeps.
    pub sleeps: AtomicU64,
    /// Slots recovered from a participant that died holding them.
    pub recoveries: AtomicU64,
    _pad3: [u64; 5],
}

#[repr(C)]
pub(crate) struct Slot {
    /// Holder, phase, credits and the closed bit; see `queue.rs`. Its low
    /// half is the futex word.
    pub state: AtomicU64,
    /// Threads (of any process) sleeping or about to sleep on `state`.
    pub waiters: AtomicU32,
    /// Length of the item held, written by its enqueuer.
    pub len: AtomicU32,
    /// Under loom the payload is an atomic, so loom sees its causality.
    #[cfg(loom)]
    pub payload: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<Header>() == HEADER_SIZE);
    assert!(std::mem::size_of::<Slot>() == SLOT_HEADER_SIZE);
};

/// Validated geometry of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub capacity: u32,
    pub item_size: u32,
    pub stride: usize,
    pub total_size: usize,
}

impl Geometry {
    /// Geometry for a new queue, or `InvalidArgument`.
    pub fn new(capacity: u32, item_size: u32) -> Result<Geometry, Error> {
        if capacity == 0 || !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(Error::InvalidArgument(format!(
                "capacity must be a power of two from 1 to {MAX_CAPACITY}, got {capacity}"
            )));
        }
        if item_size == 0 || item_size > MAX_ITEM_SIZE {
            return Err(Error::InvalidArgument(format!(
                "item size must be from 1 to {MAX_ITEM_SIZE} bytes, got {item_size}"
            )));
        }
        let stride = (SLOT_HEADER_SIZE + item_size as usize).next_multiple_of(SLOT_ALIGN);
        Ok(Geometry { capacity, item_size, stride, total_size: HEADER_SIZE + capacity as usize * stride })
    }
}

/// Reads and validates the header of a mapped segment of `mapped_len` bytes.
///
/// # Safety
/// `base` must point to at least `mapped_len` readable bytes, aligned to 64.
#[cfg(not(loom))]
pub(crate) unsafe fn read_geometry(base: *const u8, mapped_len: usize) -> Result<Geometry, Error> {
    if mapped_len < HEADER_SIZE {
        return Err(Error::BadLayout(format!("segment is {mapped_len} bytes, smaller than the {HEADER_SIZE}-byte header")));
    }
    // SAFETY: the caller guarantees HEADER_SIZE readable, aligned bytes.
    let h = unsafe { &*(base as *const Header) };
    use crate::sync::Ordering::{Acquire, Relaxed};
    let magic = h.magic.load(Acquire);
    if magic != MAGIC {
        return Err(Error::BadLayout(if magic == 0 {
            "segment is not (yet) an initialised RCQB queue".to_string()
        } else {
            format!("bad magic {magic:#018x}: not an RCQB queue")
        }));
    }
    let version = h.version.load(Relaxed);
    if version != LAYOUT_VERSION {
        return Err(Error::BadLayout(format!("layout version {version}, this build reads {LAYOUT_VERSION}")));
    }
    let g = Geometry::new(h.capacity.load(Relaxed), h.item_size.load(Relaxed))
        .map_err(|e| Error::BadLayout(format!("corrupt header: {e}")))?;
    let stride = h.slot_stride.load(Relaxed) as usize;
    let total = h.total_size.load(Relaxed);
    if stride != g.stride || total != g.total_size as u64 {
        return Err(Error::BadLayout(format!("corrupt header: stride {stride} / size {total} do not match the geometry")));
    }
    if g.total_size > mapped_len {
        return Err(Error::BadLayout(format!("header claims {} bytes, segment has {mapped_len}", g.total_size)));
    }
    Ok(g)
}

/// Inode of this process's pid namespace (0 if unknown).
#[cfg(not(loom))]
pub(crate) fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).unwrap_or(0)
}

/// Writes a fresh header into zeroed memory; `magic` goes last.
#[cfg(not(loom))]
pub(crate) fn init_header(h: &Header, g: &Geometry) {
    use crate::sync::Ordering::{Relaxed, Release};
    h.version.store(LAYOUT_VERSION, Relaxed);
    h.capacity.store(g.capacity, Relaxed);
    h.item_size.store(g.item_size, Relaxed);
    h.slot_stride.store(g.stride as u32, Relaxed);
    h.total_size.store(g.total_size as u64, Relaxed);
    h.pid_ns.store(pid_namespace(), Relaxed);
    // Release: an opener that acquires the magic sees every field above.
    h.magic.store(MAGIC, Release);
}

#[cfg(loom)]
impl Header {
    pub(crate) fn new_loom(g: &Geometry) -> Header {
        Header {
            magic: AtomicU64::new(MAGIC),
            version: AtomicU32::new(LAYOUT_VERSION),
            capacity: AtomicU32::new(g.capacity),
            item_size: AtomicU32::new(g.item_size),
            slot_stride: AtomicU32::new(g.stride as u32),
            total_size: AtomicU64::new(g.total_size as u64),
            closed: AtomicU32::new(0),
            mixed_pid_ns: AtomicU32::new(0),
            pid_ns: AtomicU64::new(0),
            _pad0: [0; 2],
            tail: AtomicU64::new(0),
            _pad1: [0; 7],
            head: AtomicU64::new(0),
            _pad2: [0; 7],
            waits: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            _pad3: [0; 5],
        }
    }
}

#[cfg(loom)]
impl Slot {
    pub(crate) fn new_loom() -> Slot {
        Slot {
            state: AtomicU64::new(0),
            waiters: AtomicU32::new(0),
            len: AtomicU32::new(0),
            payload: AtomicU64::new(0),
        }
    }
}
