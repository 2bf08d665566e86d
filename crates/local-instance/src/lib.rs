//! Local-directory filesystem instances of a Polytropon I/O service,
//! answered natively.
//!
//! An I/O service written in JavaScript pays for every request in its
//! event loop: taking it, decoding it, promises, encoding the reply. For
//! the requests applications make most on a plain local directory (stat,
//! lstat, readdir; open, read, write, fstat, ftruncate, fsync, close) that
//! is most of the cost. [`Instances`] answers those in the service's take
//! loop instead, straight from the bytes of the request to the bytes of
//! the reply, and passes every other request (and anything it does not
//! decode, or a handle it did not give out) to the JavaScript handler
//! unchanged. Handles opened here live here, per process, until closed,
//! until their instance is unmounted, or until their process is gone.
//!
//! What it answers must be exactly what the JavaScript path would: the
//! same confinement (see [`root`]), node:fs's attributes and entry order,
//! and the same errors, as `-errno`.

mod flusher;
pub mod root;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use flusher::{Done, Notify};
pub use root::Root;
use flusher::Flusher;
use root::errno;

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

/// The operations answered here, in the order of the counters.
const OPCODES: [u32; 14] = [
    wire::OPEN,
    wire::CLOSE,
    wire::READ,
    wire::WRITE,
    wire::STAT,
    wire::LSTAT,
    wire::FSTAT,
    wire::READDIR,
    wire::FTRUNCATE,
    wire::FSYNC,
    wire::FDATASYNC,
    wire::FCHMOD,
    wire::FCHOWN,
    wire::FUTIMES,
];

/// The counter slot of an opcode answered here.
fn slot(opcode: u32) -> Option<usize> {
    OPCODES.iter().position(|&o| o == opcode)
}

/// Handles given out here start at 2^40, above any the JavaScript handler
/// gives (it counts up from 1 per process): a request naming a handle is
/// ours exactly when the handle is in our table.
pub const HANDLE_BASE: u64 = 1 << 40;

/// The service's limits that apply to requests answered here.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Handles one process may hold open, here and in JavaScript together (EMFILE).
    pub handles_per_process: usize,
    /// Largest read served in one request (EINVAL beyond).
    pub read_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { handles_per_process: 4096, read_bytes: 64 << 20 }
    }
}

#[derive(Debug)]
struct Instance {
    root: Root,
    /// Its host path names another directory now and opening that failed:
    /// nothing is answered here until a later check opens it.
    stale: bool,
    /// Handles it may have open at once (the libservice's own maxHandles, EMFILE).
    max_handles: usize,
    open: usize,
}

#[derive(Debug)]
struct OpenFile {
    pid: u32,
    instance: String,
    /// Shared with a flushing thread while a flush runs.
    fd: Arc<OwnedFd>,
}

/// Open handles of one process, here and (as JavaScript reports) there.
#[derive(Debug, Default)]
struct Process {
    here: usize,
    there: usize,
}

/// The local-directory instances of one service, by name (the first
/// component of a request's path), the handles opened on them per process,
/// and counters.
#[derive(Debug)]
pub struct Instances {
    instances: HashMap<String, Instance>,
    handles: HashMap<u64, OpenFile>,
    processes: HashMap<u32, Process>,
    next_handle: u64,
    limits: Limits,
    counters: [Counter; OPCODES.len()],
    /// Clients seen here, and those not yet reported (see [`Instances::new_clients`]).
    clients: HashSet<u64>,
    unreported: Vec<(u64, u32)>,
    /// Set while the service stops: every request goes to its handler, which refuses it.
    pub stopping: bool,
    reply: Vec<u8>,
    flusher: Flusher,
    /// Flushes handed to the flushing threads and not yet through [`Instances::finished`].
    flushing: usize,
    roots_checked: Instant,
    /// Namespace changes handed to the handler and not answered yet (their tags).
    changes: HashSet<u64>,
    /// The length of the reply written into the request's reply area, when
    /// it was (`reply` then holds only what follows it beyond the area).
    placed: Option<usize>,
}

/// What [`Instances::serve`] did with a request.
#[derive(Debug, PartialEq)]
pub enum Served<'a> {
    /// Not one of ours: the JavaScript handler must answer it.
    Pass,
    /// Answered: the status (`-errno` on failure) and the reply (empty on failure).
    Reply(i64, &'a [u8]),
    /// Taken: it finishes on another thread ([`Instances::finished`] gives its status).
    Later,
    /// Answered into the reply area given to [`Instances::serve_into`]:
    /// the status (0), the reply's length there, and bytes that follow it
    /// beyond the area (empty unless the area was filled to its end).
    InPlace(i64, usize, &'a [u8]),
}

/// Where a reply may be written straight away: the client's buffer in the
/// channel, `len` bytes from `at` (see [`Instances::serve_into`]).
#[derive(Clone, Copy, Debug)]
pub struct ReplyArea {
    pub at: *mut u8,
    pub len: usize,
}

/// A request's outcome: `None` to pass it on, `Some(errno)`, or `Some(0)`
/// with the reply in `Instances::reply`.
type Outcome = Option<i32>;

/// How often [`Instances::check_roots`] looks at the roots' host paths.
pub const ROOT_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// A reply buffer that grew past this is given back after the request.
const KEEP_REPLY: usize = 1 << 20;
/// More entries than a listing reply may carry (MAX_ENTRIES in protocol.ts).
const MAX_ENTRIES: usize = 1 << 20;

impl Instances {
    /// No instances yet. `notify` is called (from another thread) when a
    /// flush finished, to wake the service's loop if it sleeps.
    pub fn new(limits: Limits, notify: Notify) -> Instances {
        Instances {
            instances: HashMap::new(),
            handles: HashMap::new(),
            processes: HashMap::new(),
            next_handle: HANDLE_BASE,
            limits,
            counters: Default::default(),
            clients: HashSet::new(),
            unreported: Vec::new(),
            stopping: false,
            reply: Vec::new(),
            placed: None,
            flusher: Flusher::new(notify),
            flushing: 0,
            roots_checked: Instant::now(),
            changes: HashSet::new(),
        }
    }

    /// Serves the directory `root` as the instance `name`, with at most
    /// `max_handles` open at once. `Unsupported` without openat2: the
    /// caller keeps serving the instance itself.
    pub fn mount(&mut self, name: &str, root: &str, max_handles: usize) -> io::Result<()> {
        let root = Root::open(root)?;
        self.unmount(name);
        self.instances.insert(name.to_string(), Instance { root, stale: false, max_handles, open: 0 });
        Ok(())
    }

    /// Stops answering for `name` and closes the handles open on it (later
    /// requests naming them are the handler's, which answers EBADF); true
    /// if it was mounted.
    pub fn unmount(&mut self, name: &str) -> bool {
        let was = self.instances.remove(name).is_some();
        // Its handles go in any case (they outlive a root that went stale).
        self.close_where(|f| f.instance == name);
        was
    }

    /// Opens again the roots whose host path has come to name another
    /// directory (replaced under the running service), so that this side
    /// serves what the JavaScript path, which resolves the path on every
    /// call, serves; at most every [`ROOT_CHECK`]. Handles open on the old
    /// directory stay open, as descriptors do. A root that cannot be opened
    /// again is left to the JavaScript handler until a later check opens it.
    pub fn check_roots(&mut self) {
        if self.roots_checked.elapsed() < ROOT_CHECK {
            return;
        }
        self.roots_checked = Instant::now();
        // Directories renamed or removed behind the service's back are seen
        // within one interval, as the root itself is.
        self.forget_dirs();
        for inst in self.instances.values_mut() {
            if !inst.stale && inst.root.still_current() {
                continue;
            }
            // Replaced (or still unopenable): open what the path names now;
            // until that works, the JavaScript handler answers.
            match Root::open(inst.root.path()) {
                Ok(root) => {
                    inst.root = root;
                    inst.stale = false;
                }
                Err(_) => inst.stale = true,
            }
        }
    }

    /// Stops answering for every instance and closes every handle (the
    /// service stops).
    pub fn unmount_all(&mut self) {
        let names: Vec<String> = self.instances.keys().cloned().collect();
        for n in names {
            self.unmount(&n);
        }
    }

    /// A process is gone (its last client detached or died): closes its
    /// handles here and forgets it.
    pub fn close_process(&mut self, pid: u32) {
        self.close_where(|f| f.pid == pid);
        self.processes.remove(&pid);
    }

    /// Closes the handles `close` picks, keeping the counts of their
    /// instances and processes.
    fn close_where(&mut self, close: impl Fn(&OpenFile) -> bool) {
        let (instances, processes) = (&mut self.instances, &mut self.processes);
        self.handles.retain(|_, f| {
            let keep = !close(f);
            if !keep {
                uncount(instances, processes, f);
            }
            keep
        });
    }

    /// A client is gone: it may be reported again if its id ever comes back.
    pub fn forget_client(&mut self, client: u64) {
        self.clients.remove(&client);
    }

    /// The handles a process has open in JavaScript, for EMFILE here.
    pub fn set_handles_there(&mut self, pid: u32, n: usize) {
        self.processes.entry(pid).or_default().there = n;
    }

    /// The instances answered here now, by name.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.instances.iter().filter(|(_, i)| !i.stale).map(|(n, _)| n.clone()).collect();
        v.sort();
        v
    }

    /// Handles a process has open here.
    pub fn handles_here(&self, pid: u32) -> usize {
        self.processes.get(&pid).map_or(0, |p| p.here)
    }

    /// Handles open here in all.
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    /// Clients (id, pid) whose requests were answered here since the last
    /// call and not before: the handler's registry of clients per process
    /// must know them, to close their process's handles when they go.
    pub fn new_clients(&mut self) -> Vec<(u64, u32)> {
        std::mem::take(&mut self.unreported)
    }

    /// The counter of `opcode`, if it is one answered here.
    pub fn counter(&self, opcode: u32) -> Option<&Counter> {
        slot(opcode).map(|i| &self.counters[i])
    }

    /// Answers a request of `client` of process `pid` if it is one of this
    /// crate's, for one of its instances or handles. `tag` names the request
    /// to [`Instances::finished`] when it finishes later (a flush).
    pub fn serve(&mut self, tag: u64, client: u64, pid: u32, opcode: u32, payload: &[u8]) -> Served<'_> {
        // SAFETY: no area is given.
        unsafe { self.serve_into(tag, client, pid, opcode, payload, None) }
    }

    /// As [`Instances::serve`], but a read may land in `area`, the
    /// client's own buffer, straight from the kernel instead of through
    /// this side's reply and a copy: then it is [`Served::InPlace`].
    ///
    /// # Safety
    /// `area`, if given, is writable for its `len` bytes for the whole
    /// call, and nothing this process reads (the request is in `payload`).
    /// Another process may write it meanwhile (the client owning it): that
    /// spoils only that client's reply.
    pub unsafe fn serve_into(&mut self, tag: u64, client: u64, pid: u32, opcode: u32, payload: &[u8], area: Option<ReplyArea>) -> Served<'_> {
        let Some(slot) = slot(opcode) else {
            // A request that may rename, remove or re-permission a directory
            // goes to the handler: until it is answered, no lookup here uses
            // a remembered directory (it could be the one going).
            if changes_namespace(opcode) {
                self.changes.insert(tag);
            }
            return Served::Pass;
        };
        if self.stopping {
            return Served::Pass;
        }
        let t0 = Instant::now();
        self.placed = None;
        self.reply.clear();
        if self.reply.capacity() > KEEP_REPLY {
            self.reply = Vec::new();
        }
        let outcome = match opcode {
            wire::STAT | wire::LSTAT | wire::READDIR => self.lookup(opcode, payload),
            wire::OPEN => self.open(pid, payload),
            wire::FSYNC | wire::FDATASYNC => match self.flush(tag, pid, opcode, payload) {
                Some(()) => {
                    self.seen(client, pid);
                    return Served::Later;
                }
                None => None,
            },
            _ => self.by_handle(pid, opcode, payload, area),
        };
        let Some(errno) = outcome else { return Served::Pass };
        if errno != 0 {
            self.reply.clear();
            self.placed = None;
        }
        self.seen(client, pid);
        self.counters[slot].record(t0.elapsed().as_secs_f64() * 1e6, errno != 0);
        match self.placed {
            Some(len) => Served::InPlace(0, len, &self.reply),
            None => Served::Reply(-i64::from(errno), &self.reply),
        }
    }

    /// The handler answered request `tag` (the token it was served with):
    /// if it was a namespace change, every remembered directory is resolved
    /// again from now on. Called before its reply is posted, so that the
    /// client's next request sees the change.
    pub fn answered(&mut self, tag: u64) {
        if self.changes.remove(&tag) {
            self.forget_dirs();
        }
    }

    /// Whether lookups may go through remembered directories now: not
    /// while a namespace change handed to the handler is unanswered.
    fn remember(&self) -> bool {
        self.changes.is_empty()
    }

    /// Forgets every directory remembered (a change made here, or perhaps
    /// behind the service's back).
    pub fn forget_dirs(&mut self) {
        for i in self.instances.values_mut() {
            i.root.forget_dirs();
        }
    }

    /// Directories remembered and usable now, in all instances (for tests).
    pub fn remembered_dirs(&self) -> usize {
        if !self.remember() {
            return 0;
        }
        self.instances.values().map(|i| i.root.remembered()).sum()
    }

    /// Flushes finished since the last call, as (tag, status), counted.
    pub fn finished(&mut self) -> Vec<(u64, i64)> {
        let done = self.flusher.finished();
        self.flushing -= done.len();
        let mut out = Vec::with_capacity(done.len());
        for d in done {
            let opcode = if d.datasync { wire::FDATASYNC } else { wire::FSYNC };
            if let Some(i) = slot(opcode) {
                self.counters[i].record(d.us, d.errno != 0);
            }
            out.push((d.tag, -i64::from(d.errno)));
        }
        out
    }

    /// Flushes taken and not yet finished: a service stopping gracefully waits for them.
    pub fn flushes_in_flight(&self) -> usize {
        self.flushing
    }

    /// The list flushing threads add to, for a sleeper's check that nothing finished.
    pub fn finished_list(&self) -> Arc<Mutex<Vec<Done>>> {
        self.flusher.finished_list()
    }

    fn seen(&mut self, client: u64, pid: u32) {
        if self.clients.insert(client) {
            self.unreported.push((client, pid));
        }
    }

    /// The instance and the path within it of a request path ('/name/rest' or '/name').
    fn route<'a>(&self, path: &'a str) -> Option<(&'a str, CString)> {
        let rest = path.strip_prefix('/')?;
        let (name, inner) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        self.instances.get(name).filter(|i| !i.stale)?;
        Some((name, CString::new(inner).ok()?))
    }

    fn lookup(&mut self, opcode: u32, payload: &[u8]) -> Outcome {
        let (name, inner) = self.route(wire::path_request(payload)?)?;
        let remember = self.remember();
        let root = &mut self.instances.get_mut(name)?.root;
        let outcome = match opcode {
            wire::READDIR => match root.readdir(&inner, remember) {
                // The handler refuses a listing the protocol cannot carry.
                Ok(entries) if entries.len() > MAX_ENTRIES => Some(libc::EINVAL),
                // A name that is not UTF-8: node:fs shows it lossily; the handler does that.
                Ok(entries) => wire::entries_result(&entries, &mut self.reply).then_some(0),
                Err(e) => Some(e),
            },
            _ => match root.stat(&inner, opcode == wire::STAT, remember) {
                Ok(a) => Some(stat_reply(&a, &mut self.reply)),
                Err(e) => Some(e),
            },
        };
        // A lookup the kernel kept racing with renames: the handler's.
        outcome.filter(|&e| e != libc::EAGAIN)
    }

    fn open(&mut self, pid: u32, payload: &[u8]) -> Outcome {
        let mut f = wire::Fields::new(payload)?;
        let (path, flags, mode) = (f.path()?, f.u32()?, f.u32()?);
        let flags = i32::try_from(flags).ok().filter(|fl| fl & !root::OPEN_FLAGS == 0 && fl & libc::O_ACCMODE != libc::O_ACCMODE)?;
        if !f.end() {
            return None;
        }
        let (name, inner) = self.route(path)?;
        // The checks in the handler's order: the process's handles, the
        // libservice's arguments and its handles, then the system call.
        let p = self.processes.get(&pid);
        if p.map_or(0, |p| p.here + p.there) >= self.limits.handles_per_process {
            return Some(libc::EMFILE);
        }
        if mode > 0o7777 {
            // Bits the kernel would drop and openat2 refuses: the handler's.
            return None;
        }
        let remember = self.remember();
        let inst = self.instances.get_mut(name)?;
        if inst.open >= inst.max_handles {
            return Some(libc::EMFILE);
        }
        match inst.root.open_file(&inner, flags, mode, remember) {
            // The kernel kept racing with renames: the handler's.
            Err(libc::EAGAIN) => None,
            Ok(fd) => {
                inst.open += 1;
                self.processes.entry(pid).or_default().here += 1;
                let handle = self.next_handle;
                self.next_handle += 1;
                self.handles.insert(handle, OpenFile { pid, instance: name.to_string(), fd: Arc::new(fd) });
                wire::int_result(handle, &mut self.reply);
                Some(0)
            }
            Err(e) => Some(e),
        }
    }

    /// The open file a request names, if it is ours and its process's. Not
    /// ours (another process's, closed, or the handler's own): the handler
    /// answers, EBADF.
    fn file(&self, pid: u32, handle: i64) -> Option<&OpenFile> {
        self.handles.get(&u64::try_from(handle).ok()?).filter(|f| f.pid == pid)
    }

    /// Hands a flush of one of our handles to the flushing threads.
    fn flush(&mut self, tag: u64, pid: u32, opcode: u32, payload: &[u8]) -> Option<()> {
        let mut f = wire::Fields::new(payload)?;
        let handle = f.int()?;
        if !f.end() {
            return None;
        }
        let fd = self.file(pid, handle)?.fd.clone();
        self.flusher.flush(tag, fd, opcode == wire::FDATASYNC);
        self.flushing += 1;
        Some(())
    }

    /// A read's reply: the version byte, then the data. With a reply area
    /// of room for more than the version byte they go there as far as it
    /// reaches (then [`Served::InPlace`]), the rest into `reply`; without one,
    /// all into `reply`. One `preadv` (`readv` at the file's offset) either
    /// way, as atomic as a single `pread`.
    fn read(&mut self, fd: RawFd, length: usize, position: i64, area: Option<ReplyArea>) -> Outcome {
        let area = area.filter(|a| a.len >= 2);
        let first = area.map_or(0, |a| length.min(a.len - 1));
        if area.is_none() {
            self.reply.push(wire::PROTOCOL_VERSION);
        }
        let rest = length - first;
        self.reply.reserve(rest);
        let kept = self.reply.len();
        let iov = [
            // SAFETY (of the add): the area has room past its first byte.
            libc::iovec { iov_base: area.map_or(std::ptr::null_mut(), |a| unsafe { a.at.add(1) }).cast(), iov_len: first },
            libc::iovec { iov_base: self.reply.spare_capacity_mut().as_mut_ptr().cast(), iov_len: rest },
        ];
        let iov = match (first, rest) {
            (0, _) => &iov[1..],
            (_, 0) => &iov[..1],
            _ => &iov[..],
        };
        // SAFETY: each iovec is writable for its length (the caller's area
        // past its first byte; `reply`'s reserved capacity); `fd` is open.
        let n = unsafe {
            if position < 0 {
                libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int)
            } else {
                libc::preadv(fd, iov.as_ptr(), iov.len() as libc::c_int, position)
            }
        };
        if n < 0 {
            return Some(errno());
        }
        let n = n as usize;
        // SAFETY: the kernel wrote min(n, first) bytes into the area after
        // its first byte and the rest into `reply`'s capacity; the area is
        // writable (the caller's contract).
        unsafe {
            self.reply.set_len(kept + n.saturating_sub(first));
            if let Some(a) = area {
                a.at.write(wire::PROTOCOL_VERSION);
            }
        }
        self.placed = area.map(|_| 1 + n.min(first));
        Some(0)
    }

    /// The requests on a handle of ours. Each is decoded whole first (what
    /// does not decode is the handler's: EBADMSG); once it names our
    /// handle, it is answered here, whatever happens.
    fn by_handle(&mut self, pid: u32, opcode: u32, payload: &[u8], area: Option<ReplyArea>) -> Outcome {
        let mut f = wire::Fields::new(payload)?;
        let handle = f.int()?;
        let done = |rc: isize| if rc < 0 { Some(errno()) } else { Some(0) };
        match opcode {
            wire::CLOSE => {
                if !f.end() {
                    return None;
                }
                self.file(pid, handle)?;
                // `file` took the handle as a u64 key: it is a non-negative one.
                let file = self.handles.remove(&(handle as u64))?;
                uncount(&mut self.instances, &mut self.processes, &file);
                match Arc::try_unwrap(file.fd) {
                    Ok(fd) => {
                        // close(2) reports errors of writes the kernel kept (NFS...).
                        let raw = fd.into_raw_fd();
                        // SAFETY: `raw` was owned by `fd`, released just above.
                        done(unsafe { libc::close(raw) } as isize)
                    }
                    // A flush still runs on it: the descriptor closes when it ends.
                    Err(_) => Some(0),
                }
            }
            wire::READ => {
                let (length, position) = (f.u32()? as usize, f.int()?);
                if !f.end() {
                    return None;
                }
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                if length > self.limits.read_bytes {
                    return Some(libc::EINVAL);
                }
                // node:fs reads nothing, and calls nothing, for 0 bytes.
                if length == 0 {
                    self.reply.push(wire::PROTOCOL_VERSION);
                    return Some(0);
                }
                self.read(fd, length, position, area)
            }
            wire::WRITE => {
                let position = f.int()?;
                let data = f.rest();
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                let buf = data.as_ptr().cast();
                // SAFETY: `data` is a valid slice; `fd` is open.
                let n = unsafe { if position < 0 { libc::write(fd, buf, data.len()) } else { libc::pwrite(fd, buf, data.len(), position) } };
                if n < 0 {
                    return Some(errno());
                }
                wire::int_result(n as u64, &mut self.reply);
                Some(0)
            }
            wire::FSTAT => {
                if !f.end() {
                    return None;
                }
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                match root::fstat(fd) {
                    Ok(a) => Some(stat_reply(&a, &mut self.reply)),
                    Err(e) => Some(e),
                }
            }
            wire::FTRUNCATE => {
                let length = f.int()?;
                if !f.end() {
                    return None;
                }
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                if length < 0 {
                    return Some(libc::EINVAL);
                }
                // SAFETY: plain call on an open descriptor.
                done(unsafe { libc::ftruncate(fd, length) } as isize)
            }
            wire::FCHMOD => {
                let mode = f.u32()?;
                if !f.end() {
                    return None;
                }
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                // A directory's permissions decide lookups through it.
                self.forget_dirs();
                // SAFETY: plain call on an open descriptor.
                done(unsafe { libc::fchmod(fd, mode) } as isize)
            }
            wire::FCHOWN => {
                let (uid, gid) = (f.u32()?, f.u32()?);
                if !f.end() {
                    return None;
                }
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                self.forget_dirs();
                // SAFETY: plain call on an open descriptor.
                done(unsafe { libc::fchown(fd, uid, gid) } as isize)
            }
            wire::FUTIMES => {
                let (atime, mtime) = (f.f64()?, f.f64()?);
                if !f.end() {
                    return None;
                }
                let fd = self.file(pid, handle)?.fd.as_raw_fd();
                let (Some(a), Some(m)) = (timespec_of_ms(atime), timespec_of_ms(mtime)) else { return Some(libc::EINVAL) };
                let times = [a, m];
                // SAFETY: an open descriptor and two timespecs.
                done(unsafe { libc::futimens(fd, times.as_ptr()) } as isize)
            }
            _ => None,
        }
    }
}

/// Milliseconds since the epoch as futimens(2) takes them, as node:fs
/// sets them (`fs.futimesSync(fd, ms / 1000, ...)`): a negative time is
/// now, and libuv keeps microseconds; None for a time that is not finite.
fn timespec_of_ms(ms: f64) -> Option<libc::timespec> {
    if !ms.is_finite() {
        return None;
    }
    if ms < 0.0 {
        return Some(libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW });
    }
    let secs = ms / 1000.0;
    let tv_sec = secs.trunc();
    let mut tv_nsec = ((secs - tv_sec) * 1e9) as i64;
    tv_nsec -= tv_nsec % 1000;
    Some(libc::timespec { tv_sec: tv_sec as libc::time_t, tv_nsec })
}

/// Opcodes of the handler's that may rename, remove or re-permission a
/// directory (rmdir, unlink, rename, chmod, chown), and any this side does
/// not know: remembered directories are not trusted across them.
fn changes_namespace(opcode: u32) -> bool {
    matches!(opcode, wire::RMDIR | wire::UNLINK | wire::RENAME | wire::CHMOD | wire::CHOWN) || opcode > wire::FUTIMES
}

/// A handle closed: one fewer open on its instance and in its process.
fn uncount(instances: &mut HashMap<String, Instance>, processes: &mut HashMap<u32, Process>, f: &OpenFile) {
    if let Some(i) = instances.get_mut(&f.instance) {
        i.open = i.open.saturating_sub(1);
    }
    if let Some(p) = processes.get_mut(&f.pid) {
        p.here = p.here.saturating_sub(1);
    }
}

/// A stat reply, or EINVAL where a value is beyond the protocol's integers
/// (what the handler answers then: its encoder refuses the record).
fn stat_reply(a: &wire::Attributes, reply: &mut Vec<u8>) -> i32 {
    if wire::stat_result(a, reply) {
        0
    } else {
        reply.clear();
        libc::EINVAL
    }
}

#[cfg(test)]
mod tests;
