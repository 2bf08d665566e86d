//! Local-directory filesystem instances of a Polytropon I/O service,
//! answered natively.
//!
//! An I/O service written in JavaScript pays for every request in its
//! event loop: taking it, decoding it, promises, encoding the reply. For
//! the lookups applications make most (stat, lstat, readdir) on a plain
//! local directory that is most of the cost. [`Instances`] answers those
//! requests in the service's take loop instead, straight from the bytes of
//! the request to the bytes of the reply, and passes every other request
//! (and anything it does not decode) to the JavaScript handler unchanged.
//!
//! What it answers must be exactly what the JavaScript path would: the
//! same confinement (see [`root`]), node:fs's attributes and entry order,
//! and the same errors, as `-errno`.

pub mod root;
pub mod wire;

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::time::Instant;

pub use root::Root;

/// Latency buckets: powers of two microseconds, as @polytropon/ioservice's stats.ts.
pub const BUCKETS: usize = 31;

/// Counts and latencies of one operation answered here.
#[derive(Clone, Debug, PartialEq)]
pub struct Counter {
    pub count: u64,
    pub errors: u64,
    pub max_us: f64,
    /// Bucket i holds latencies in [2^(i-1), 2^i) µs; bucket 0 those under 1 µs.
    pub histogram: [u64; BUCKETS],
}

impl Default for Counter {
    fn default() -> Counter {
        Counter { count: 0, errors: 0, max_us: 0.0, histogram: [0; BUCKETS] }
    }
}

impl Counter {
    fn record(&mut self, us: f64, failed: bool) {
        self.count += 1;
        self.errors += u64::from(failed);
        self.max_us = self.max_us.max(us);
        let b = if us < 1.0 { 0 } else { (us.log2().floor() as usize + 1).min(BUCKETS - 1) };
        self.histogram[b] += 1;
    }
}

/// The operations answered here, in the order of [`Instances::counter`]'s index.
const OPCODES: [u32; 3] = [wire::STAT, wire::LSTAT, wire::READDIR];

/// The local-directory instances of one service, by name (the first
/// component of a request's path), and their counters.
#[derive(Debug, Default)]
pub struct Instances {
    roots: HashMap<String, Root>,
    counters: [Counter; OPCODES.len()],
    /// Set while the service stops: every request goes to its handler, which refuses it.
    pub stopping: bool,
    reply: Vec<u8>,
}

impl Instances {
    pub fn new() -> Instances {
        Instances::default()
    }

    /// Serves the directory `root` as the instance `name` (replacing one of
    /// that name). `Unsupported` without openat2: the caller keeps serving
    /// the instance itself.
    pub fn mount(&mut self, name: &str, root: &str) -> io::Result<()> {
        let r = Root::open(root)?;
        self.roots.insert(name.to_string(), r);
        Ok(())
    }

    /// Stops answering for `name`; true if it was mounted.
    pub fn unmount(&mut self, name: &str) -> bool {
        self.roots.remove(name).is_some()
    }

    /// The counter of `opcode`, if it is one answered here.
    pub fn counter(&self, opcode: u32) -> Option<&Counter> {
        OPCODES.iter().position(|&o| o == opcode).map(|i| &self.counters[i])
    }

    /// Answers a request if it is one of this crate's, for one of its
    /// instances: `Some((status, reply))`, with `-errno` on failure and an
    /// empty reply then. `None`: the JavaScript handler must answer it.
    pub fn serve(&mut self, opcode: u32, payload: &[u8]) -> Option<(i64, &[u8])> {
        let slot = OPCODES.iter().position(|&o| o == opcode)?;
        if self.stopping {
            return None;
        }
        let t0 = Instant::now();
        let path = wire::path_request(payload)?;
        // '/name/rest' or '/name': the instance, then the path within it.
        let rest = path.strip_prefix('/')?;
        let (name, inner) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let root = self.roots.get(name)?;
        let inner = CString::new(inner).ok()?;
        let answered = match opcode {
            wire::STAT | wire::LSTAT => match root.stat(&inner, opcode == wire::STAT) {
                Ok(a) => wire::stat_result(&a, &mut self.reply).then_some(0),
                Err(e) => Some(e),
            },
            _ => match root.readdir(&inner) {
                Ok(entries) => wire::entries_result(&entries, &mut self.reply).then_some(0),
                Err(e) => Some(e),
            },
        };
        // A lookup the kernel kept racing with renames, or a result the
        // protocol cannot carry from here: the JavaScript handler answers.
        let errno = answered.filter(|&e| e != libc::EAGAIN)?;
        if errno != 0 {
            self.reply.clear();
        }
        self.counters[slot].record(t0.elapsed().as_secs_f64() * 1e6, errno != 0);
        Some((-i64::from(errno), &self.reply))
    }
}

#[cfg(test)]
mod tests;
