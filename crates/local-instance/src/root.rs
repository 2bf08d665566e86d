//! A local-directory instance's root, and the lookups beneath it. Every
//! path is resolved by the kernel with openat2(2) and RESOLVE_IN_ROOT: '..'
//! stops at the root and symlinks (absolute ones too) resolve beneath it,
//! the semantics @polytropon/libservice's LocalLibservice emulates one
//! component at a time, without its window for a concurrent rename (the
//! kernel resolves and opens in one step).
//!
//! openat2 with RESOLVE_IN_ROOT costs about three times a plain statx on
//! these VMs, so a root remembers the directories it resolved: a lookup of
//! `a/b/name` (plain components, no trailing slash) resolves `a/b` once,
//! then asks the kernel about `name` beneath that directory without
//! following a symlink there, which cannot leave it. A final symlink that
//! must be followed goes the whole way through openat2 again. What is
//! remembered is forgotten on every namespace change the service makes
//! ([`Root::forget_dirs`]) and, for changes made behind its back, at every
//! root check (see `ROOT_CHECK`), as FUSE forgets its entries after their
//! timeout.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::wire::Attributes;

/// How many times a lookup is retried when the kernel saw a rename race
/// while resolving '..' (EAGAIN) before giving up.
const RACE_RETRIES: usize = 8;

/// Directories a root remembers at most; past that, those of older
/// generations go, then all.
const DIRS: usize = 256;

/// The errno of the last failed call.
pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// A served directory, held open (O_PATH). The JavaScript path resolves
/// the host path on every call, so [`Root::still_current`] tells when the
/// path has come to name another directory (replaced under a running
/// service), for the caller to open it again.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: CString,
    /// (dev, ino) of the directory held.
    id: (u64, u64),
    /// Directories resolved beneath it (O_PATH), by their path relative to
    /// it ("a/b"), with the generation they were resolved in.
    dirs: HashMap<Vec<u8>, (OwnedFd, u64)>,
    /// Bumped by [`Root::forget_dirs`]: older entries are resolved again.
    generation: u64,
}

impl Root {
    /// Opens `path`, which must be a directory. `Unsupported` on a kernel
    /// without openat2 (before Linux 5.6).
    pub fn open(path: &str) -> io::Result<Root> {
        let c = CString::new(path).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the root contains a NUL byte"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the call.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let a = fstat(fd.as_raw_fd()).map_err(io::Error::from_raw_os_error)?;
        let root = Root { fd, path: c, id: (a.dev, a.ino), dirs: HashMap::new(), generation: 0 };
        match root.lookup(c"/", libc::O_PATH, 0, true) {
            Ok(_) => Ok(root),
            Err(libc::ENOSYS) => Err(io::Error::new(io::ErrorKind::Unsupported, "openat2(2) is not available (Linux 5.6 or later has it)")),
            Err(e) => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// The host path it was opened with.
    pub fn path(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }

    /// Whether the host path still names the directory held (one stat).
    pub fn still_current(&self) -> bool {
        statx(libc::AT_FDCWD, &self.path, 0).is_ok_and(|a| (a.dev, a.ino) == self.id)
    }

    /// Opens `path` beneath the root with `flags`, following a final
    /// symlink when `follow`. Errors are errno values, as the kernel's
    /// lookup gives them.
    fn lookup(&self, path: &CStr, flags: i32, mode: u32, follow: bool) -> Result<OwnedFd, i32> {
        let flags = flags | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
        // SAFETY: open_how is plain data; zeroed is a valid value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        how.mode = u64::from(mode);
        // No magic links (/proc/self/fd/...): they could name anything.
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        for _ in 0..RACE_RETRIES {
            // SAFETY: the arguments are a valid directory fd, a
            // NUL-terminated path and an open_how of the size given.
            let fd = unsafe { libc::syscall(libc::SYS_openat2, self.fd.as_raw_fd(), path.as_ptr(), &how as *const libc::open_how, size_of::<libc::open_how>()) };
            if fd >= 0 {
                // SAFETY: a new descriptor, owned by nothing else.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
            }
            let e = errno();
            if e != libc::EAGAIN {
                return Err(e);
            }
        }
        Err(libc::EAGAIN)
    }

    /// Forgets the directories resolved so far (lazily: each is resolved
    /// again when next used): a directory may have been renamed, removed or
    /// replaced, or its permissions changed.
    pub fn forget_dirs(&mut self) {
        self.generation += 1;
    }

    /// The directories remembered and current (for tests).
    pub fn remembered(&self) -> usize {
        self.dirs.values().filter(|(_, g)| *g == self.generation).count()
    }

    /// The directory `parent` ("" for the root, else plain components
    /// without a leading slash), resolved beneath the root as a lookup of
    /// a path through it would resolve it, and remembered.
    fn dir(&mut self, parent: &[u8]) -> Result<RawFd, i32> {
        if parent.is_empty() {
            return Ok(self.fd.as_raw_fd());
        }
        if let Some((fd, g)) = self.dirs.get(parent) {
            if *g == self.generation {
                return Ok(fd.as_raw_fd());
            }
        }
        // `parent` is a slice of a C string: it holds no NUL.
        let c = CString::new(parent).map_err(|_| libc::EINVAL)?;
        let fd = self.lookup(&c, libc::O_PATH | libc::O_DIRECTORY, 0, true)?;
        if self.dirs.len() >= DIRS {
            let g = self.generation;
            self.dirs.retain(|_, (_, eg)| *eg == g);
            if self.dirs.len() >= DIRS {
                self.dirs.clear();
            }
        }
        let raw = fd.as_raw_fd();
        self.dirs.insert(parent.to_vec(), (fd, self.generation));
        Ok(raw)
    }

    /// (directory, name) of a path the remembered directories may answer:
    /// '/' then plain components (none empty, '.' or '..'), without a
    /// trailing slash (which would follow a final symlink); None for any
    /// other, which goes the whole way through openat2.
    fn split(path: &CStr) -> Option<(&[u8], CString)> {
        let rest = path.to_bytes().strip_prefix(b"/")?;
        if rest.is_empty() || rest.split(|&b| b == b'/').any(|c| c.is_empty() || c == b"." || c == b"..") {
            return None;
        }
        let (parent, name) = match rest.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&rest[..0], rest),
        };
        Some((parent, CString::new(name).ok()?))
    }

    /// openat(2) of a plain `name` in the directory `dir`, not following a
    /// final symlink; None where a symlink may be in the way (ELOOP, or
    /// ENOTDIR with O_DIRECTORY), for the caller to resolve the whole path.
    fn open_in(dir: RawFd, name: &CStr, flags: i32, mode: u32) -> Option<Result<OwnedFd, i32>> {
        // SAFETY: a valid directory fd and a NUL-terminated name.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode) };
        if fd >= 0 {
            // SAFETY: a new descriptor, owned by nothing else.
            return Some(Ok(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        match errno() {
            libc::ELOOP | libc::ENOTDIR => None,
            e => Some(Err(e)),
        }
    }

    /// stat (`follow`) or lstat of `path`, as node:fs reports them. With
    /// `remember` false (a namespace change is in flight elsewhere in the
    /// service, and a remembered directory could be the one going), as with
    /// a path that does not [`Root::split`], the whole path is resolved;
    /// the same holds for [`Root::open_file`] and [`Root::readdir`].
    pub fn stat(&mut self, path: &CStr, follow: bool, remember: bool) -> Result<Attributes, i32> {
        if let Some((parent, name)) = remember.then(|| Root::split(path)).flatten() {
            let dir = self.dir(parent)?;
            let a = statx(dir, &name, libc::AT_SYMLINK_NOFOLLOW)?;
            if !follow || a.mode & libc::S_IFMT != libc::S_IFLNK {
                return Ok(a);
            }
            // A final symlink to follow: resolved whole, beneath the root.
        }
        let fd = self.lookup(path, libc::O_PATH, 0, follow)?;
        fstat(fd.as_raw_fd())
    }

    /// open(2) of `path` beneath the root, with open(2)'s flags (those
    /// [`OPEN_FLAGS`] names; the caller leaves others to the JavaScript
    /// path, as openat2 refuses bits open(2) ignores) and mode (its
    /// permission bits, used with O_CREAT or O_TMPFILE, less the umask).
    pub fn open_file(&mut self, path: &CStr, flags: i32, mode: u32, remember: bool) -> Result<OwnedFd, i32> {
        // openat2 takes a mode only where one is used.
        let mode = if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE { mode & 0o7777 } else { 0 };
        // O_TMPFILE names a directory, which the whole lookup opens.
        if flags & libc::O_TMPFILE != libc::O_TMPFILE {
            if let Some((parent, name)) = remember.then(|| Root::split(path)).flatten() {
                let dir = self.dir(parent)?;
                if let Some(r) = Root::open_in(dir, &name, flags, mode) {
                    return r;
                }
            }
        }
        // Following is up to the flags, as with open(2).
        self.lookup(path, flags, mode, true)
    }

    /// The entries of the directory at `path` (following symlinks), without
    /// '.' and '..', with their types (DT_* values), sorted by name bytes as
    /// node:fs's readdir (libuv's scandir) sorts them.
    pub fn readdir(&mut self, path: &CStr, remember: bool) -> Result<Vec<(u8, Vec<u8>)>, i32> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        let near = match remember.then(|| Root::split(path)).flatten() {
            Some((parent, name)) => {
                let dir = self.dir(parent)?;
                Root::open_in(dir, &name, flags, 0)
            }
            None => None,
        };
        let fd = match near {
            Some(r) => r?,
            None => self.lookup(path, flags, 0, true)?,
        };
        // SAFETY: `fd` is an open directory; fdopendir takes it over (it
        // is closed by closedir below, so it must not be dropped).
        let dir = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        if dir.is_null() {
            return Err(errno());
        }
        std::mem::forget(fd);
        let dir = Dir(dir);
        let mut out = Vec::new();
        loop {
            // SAFETY: errno is thread-local; readdir64 reports an error
            // only through it.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `dir.0` is an open DIR* owned by `dir`.
            let ent = unsafe { libc::readdir64(dir.0) };
            if ent.is_null() {
                let e = errno();
                return if e == 0 { break } else { Err(e) };
            }
            // SAFETY: a non-null entry from readdir64 is valid until the
            // next readdir64 on this DIR*; its name is NUL-terminated.
            let (name, kind) = unsafe { (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type) };
            let name = name.to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match kind {
                libc::DT_FIFO | libc::DT_CHR | libc::DT_DIR | libc::DT_BLK | libc::DT_REG | libc::DT_LNK | libc::DT_SOCK => kind,
                // The filesystem does not say (or says something else, as a
                // whiteout): node:fs then asks lstat, and fails with it.
                _ => {
                    // SAFETY: the entry's name is NUL-terminated, valid until the next readdir64.
                    let n = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
                    // SAFETY: `dir.0` is open; dirfd gives its descriptor.
                    ((statx(unsafe { libc::dirfd(dir.0) }, n, libc::AT_SYMLINK_NOFOLLOW)?.mode >> 12) & 0xf) as u8
                }
            };
            out.push((kind, name.to_vec()));
        }
        out.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}

/// The open(2) flags a native open takes: what node:fs's flags and
/// constants produce, and a few more with the same meaning under openat2.
pub const OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_DIRECT
    | libc::O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC;

/// fstat of an open descriptor, as node:fs reports it.
pub fn fstat(fd: RawFd) -> Result<Attributes, i32> {
    statx(fd, c"", libc::AT_EMPTY_PATH)
}

/// Closes its DIR* when dropped.
struct Dir(*mut libc::DIR);

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the DIR* came from fdopendir and is closed only here.
        unsafe { libc::closedir(self.0) };
    }
}

fn ms(t: libc::statx_timestamp) -> f64 {
    // node:fs's msFromTimeSpec: sec * 1e3 + nsec / 1e6, in doubles.
    t.tv_sec as f64 * 1e3 + f64::from(t.tv_nsec) / 1e6
}

/// statx as libuv turns it into a stat (device numbers through makedev,
/// birth time as given, zero where the filesystem keeps none).
fn statx(dirfd: RawFd, path: &CStr, flags: i32) -> Result<Attributes, i32> {
    // SAFETY: statx is plain data; zeroed is a valid value.
    let mut s: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated path, and a statx to fill.
    let rc = unsafe { libc::statx(dirfd, path.as_ptr(), flags, libc::STATX_BASIC_STATS | libc::STATX_BTIME, &mut s) };
    if rc != 0 {
        return Err(errno());
    }
    Ok(Attributes {
        dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
        ino: s.stx_ino,
        mode: u32::from(s.stx_mode),
        nlink: u64::from(s.stx_nlink),
        uid: s.stx_uid,
        gid: s.stx_gid,
        rdev: libc::makedev(s.stx_rdev_major, s.stx_rdev_minor),
        size: s.stx_size,
        blksize: u64::from(s.stx_blksize),
        blocks: s.stx_blocks,
        atime_ms: ms(s.stx_atime),
        mtime_ms: ms(s.stx_mtime),
        ctime_ms: ms(s.stx_ctime),
        birthtime_ms: ms(s.stx_btime),
    })
}
