//! A safe binding to libcephfs, the user-level CephFS client library.
//!
//! The library is loaded at run time (dlopen of `libcephfs.so.2`), so
//! whatever links this crate builds and starts on machines without Ceph and
//! fails with [`LoadError`] only when a mount is asked for.
//!
//! A [`Mount`] is one CephFS client: its own sessions with the monitors and
//! the MDS, its own metadata and data caches. Its calls may come from any
//! number of threads at once (libcephfs serializes what it must); they block
//! until the cluster answers. Failures are positive POSIX error numbers
//! ([`Errno`]), as libcephfs returns them negated.
mod ffi;
mod confined;

use ffi::{Api, CephStatx, Cmount, DirResult};
use libc::{c_char, c_int};
use std::ffi::{CStr, CString};
use std::sync::{Mutex, RwLock};

pub use confined::MAX_SYMLINKS;
pub use ffi::CephStatx as RawStatx;

/// A POSIX error number (positive: `libc::ENOENT`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (errno {})", std::io::Error::from_raw_os_error(self.0), self.0)
    }
}

impl std::error::Error for Errno {}

/// libcephfs's return convention: >= 0 is a result, < 0 a negated errno.
fn check(r: c_int) -> Result<c_int, Errno> {
    if r < 0 {
        Err(Errno(-r))
    } else {
        Ok(r)
    }
}

/// A path for C. Paths come from JS strings, where a NUL cannot be sent to C.
fn cstr(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno(libc::EINVAL))
}

/// libcephfs, loaded.
pub struct Library {
    api: Api,
    version: String,
    _lib: libloading::Library,
}

/// Why libcephfs could not be loaded.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The file dlopen was asked for.
    pub file: String,
    /// What went wrong, from dlopen or dlsym.
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not load {}: {}", self.file, self.reason)
    }
}

impl std::error::Error for LoadError {}

/// The file loaded when no other is named: the soname of Debian's `libcephfs2`.
pub const DEFAULT_LIBRARY: &str = "libcephfs.so.2";

/// The library once loaded (a failed load is not kept: a later call may name the right file).
static LIBRARY: Mutex<Option<&'static Library>> = Mutex::new(None);

impl Library {
    /// Loads libcephfs once per process: `file` (or [`DEFAULT_LIBRARY`]) on
    /// the first call that succeeds; later calls return what it loaded.
    pub fn load(file: Option<&str>) -> Result<&'static Library, LoadError> {
        let mut loaded = LIBRARY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lib) = *loaded {
            return Ok(lib);
        }
        let file = file.unwrap_or(DEFAULT_LIBRARY).to_owned();
        let fail = |reason: String| LoadError { file: file.clone(), reason };
        // SAFETY: loading runs the library's initializers, which is what
        // linking it would do; the symbols are libcephfs's own.
        let lib = unsafe {
            let lib = libloading::Library::new(&file).map_err(|e| fail(e.to_string()))?;
            let api = Api::resolve(&lib).map_err(fail)?;
            let (mut major, mut minor, mut patch) = (0, 0, 0);
            let v = (api.ceph_version)(&mut major, &mut minor, &mut patch);
            let version = if v.is_null() { format!("{major}.{minor}.{patch}") } else { CStr::from_ptr(v).to_string_lossy().into_owned() };
            Library { api, version, _lib: lib }
        };
        // Kept for the life of the process, as a linked library would be.
        let lib: &'static Library = Box::leak(Box::new(lib));
        *loaded = Some(lib);
        Ok(lib)
    }

    /// libcephfs's version string ("16.2.15"...).
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// What a [`Mount`] connects to.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The client's id without `client.` (`admin`); None: libcephfs's default.
    pub id: Option<String>,
    /// A ceph.conf to read; None: libcephfs's search ($CEPH_CONF, /etc/ceph/ceph.conf)
    /// unless `options` name the monitors.
    pub conf_file: Option<String>,
    /// Configuration options set after the file (`mon_host`, `keyring`,
    /// `client_cache_size`...), in order.
    pub options: Vec<(String, String)>,
    /// The filesystem to mount; None: the cluster's default.
    pub fs_name: Option<String>,
    /// The directory of the filesystem that becomes this client's root.
    pub root: String,
    /// Create `root` (and its parents) when it does not exist.
    pub create_root: bool,
}

/// Which step of connecting failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Create,
    ReadConf,
    SetOption(String),
    SelectFilesystem,
    Mount,
    CreateRoot,
}

/// A failed [`Mount::connect`]: the step and libcephfs's error.
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub stage: Stage,
    pub errno: Errno,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.stage {
            Stage::SetOption(name) => write!(f, "setting option {name}: {}", self.errno),
            stage => write!(f, "{stage:?}: {}", self.errno),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The attributes of a file, as stat(2) has them (times in nanoseconds).
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u32,
    pub blocks: u64,
    pub atime_ns: i128,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub btime_ns: i128,
}

/// Nanoseconds since the epoch as a timespec (before 1970: negative seconds, nanoseconds in 0..1e9).
fn timespec_of(t: i128) -> libc::timespec {
    libc::timespec { tv_sec: t.div_euclid(1_000_000_000) as i64, tv_nsec: t.rem_euclid(1_000_000_000) as i64 }
}

fn ns(t: libc::timespec) -> i128 {
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

impl From<&CephStatx> for Stat {
    fn from(s: &CephStatx) -> Stat {
        Stat {
            dev: s.stx_dev,
            ino: s.stx_ino,
            mode: s.stx_mode as u32,
            nlink: s.stx_nlink,
            uid: s.stx_uid,
            gid: s.stx_gid,
            rdev: s.stx_rdev,
            size: s.stx_size,
            blksize: s.stx_blksize,
            blocks: s.stx_blocks,
            atime_ns: ns(s.stx_atime),
            mtime_ns: ns(s.stx_mtime),
            ctime_ns: ns(s.stx_ctime),
            btime_ns: ns(s.stx_btime),
        }
    }
}

/// Filesystem statistics, as statvfs(3) has them.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
}

/// One entry of a directory ('.' and '..' are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// `d_type` (DT_REG, DT_DIR...).
    pub kind: u8,
}

/// One mounted CephFS client. Unmounted and released when dropped.
pub struct Mount {
    api: &'static Api,
    /// What stat reports as `dev`: the filesystem's id in the cluster
    /// (libcephfs itself puts the snapshot id there, 2^64 - 2 for the head).
    dev: u64,
    /// Null once unmounted. Calls hold the read side, unmount the write side,
    /// so the client is never released under a call.
    cm: RwLock<Cmount>,
}

// SAFETY: libcephfs's client is thread-safe (its calls lock what they
// share); the handle is only released under the write lock.
unsafe impl Send for Mount {}
unsafe impl Sync for Mount {}

/// A `ceph_mount_info` that is released on every exit path until it is kept.
struct Pending<'a> {
    api: &'a Api,
    cm: Cmount,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.cm.is_null() {
            // SAFETY: created by ceph_create and not handed out.
            unsafe {
                (self.api.ceph_unmount)(self.cm);
                (self.api.ceph_release)(self.cm);
            }
        }
    }
}

impl Mount {
    /// Creates a client, configures it, and mounts `config.root`. Blocks
    /// until the cluster answers or `client_mount_timeout` passes. On
    /// failure nothing is left behind (no session, no thread).
    pub fn connect(lib: &'static Library, config: &Config) -> Result<Mount, ConnectError> {
        let api = &lib.api;
        let fail = |stage: Stage| move |errno: Errno| ConnectError { stage, errno };
        let root = cstr(&config.root).map_err(fail(Stage::Mount))?;
        let cm = Self::configure(api, config)?;
        // SAFETY: `cm` is a configured client; `root` lives across the call.
        match check(unsafe { (api.ceph_mount)(cm.cm, root.as_ptr()) }) {
            Ok(_) => {}
            Err(Errno(libc::ENOENT)) if config.create_root && config.root != "/" => {
                drop(cm);
                let top = Mount::connect(lib, &Config { root: "/".into(), create_root: false, ..config.clone() })?;
                top.raw_mkdirs(&config.root, 0o755).map_err(fail(Stage::CreateRoot))?;
                drop(top);
                return Mount::connect(lib, &Config { create_root: false, ..config.clone() });
            }
            Err(e) => return Err(fail(Stage::Mount)(e)),
        }
        let mut cm = cm;
        let handle = std::mem::replace(&mut cm.cm, std::ptr::null_mut());
        // SAFETY: a mounted client.
        let dev = unsafe { (api.ceph_get_fs_cid)(handle) }.max(0) as u64;
        Ok(Mount { api, dev, cm: RwLock::new(handle) })
    }

    fn configure<'a>(api: &'a Api, config: &Config) -> Result<Pending<'a>, ConnectError> {
        let fail = |stage: Stage| move |errno: Errno| ConnectError { stage, errno };
        let id = config.id.as_deref().map(cstr).transpose().map_err(fail(Stage::Create))?;
        let mut pending = Pending { api, cm: std::ptr::null_mut() };
        // SAFETY: ceph_create fills `pending.cm`, released by its Drop.
        check(unsafe { (api.ceph_create)(&mut pending.cm, id.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())) })
            .map_err(fail(Stage::Create))?;
        let cm = pending.cm;
        let names_monitors = config.options.iter().any(|(k, _)| matches!(k.replace(['-', ' '], "_").as_str(), "mon_host"));
        let file = config.conf_file.as_deref().map(cstr).transpose().map_err(fail(Stage::ReadConf))?;
        if file.is_some() || !names_monitors {
            // SAFETY: a live client; a null path means the default search.
            check(unsafe { (api.ceph_conf_read_file)(cm, file.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())) })
                .map_err(fail(Stage::ReadConf))?;
        }
        // CEPH_ARGS, as every Ceph tool honours it.
        // SAFETY: a live client; null means CEPH_ARGS.
        check(unsafe { (api.ceph_conf_parse_env)(cm, std::ptr::null()) }).map_err(fail(Stage::ReadConf))?;
        for (k, v) in &config.options {
            let stage = Stage::SetOption(k.clone());
            let (ck, cv) = (cstr(k).map_err(fail(stage.clone()))?, cstr(v).map_err(fail(stage.clone()))?);
            // SAFETY: a live client, NUL-terminated strings.
            check(unsafe { (api.ceph_conf_set)(cm, ck.as_ptr(), cv.as_ptr()) }).map_err(fail(stage))?;
        }
        if let Some(name) = &config.fs_name {
            let name = cstr(name).map_err(fail(Stage::SelectFilesystem))?;
            // SAFETY: a live, unmounted client.
            check(unsafe { (api.ceph_select_filesystem)(cm, name.as_ptr()) }).map_err(fail(Stage::SelectFilesystem))?;
        }
        Ok(pending)
    }

    /// Runs `f` on the client, or fails with ENOTCONN once unmounted.
    fn with<T>(&self, f: impl FnOnce(&Api, Cmount) -> Result<T, Errno>) -> Result<T, Errno> {
        let cm = self.cm.read().unwrap_or_else(|p| p.into_inner());
        if cm.is_null() {
            return Err(Errno(libc::ENOTCONN));
        }
        f(self.api, *cm)
    }

    /// Unmounts and releases the client; later calls fail with ENOTCONN.
    /// Waits for the calls in flight. A second unmount does nothing.
    pub fn unmount(&self) -> Result<(), Errno> {
        let mut cm = self.cm.write().unwrap_or_else(|p| p.into_inner());
        if cm.is_null() {
            return Ok(());
        }
        let handle = std::mem::replace(&mut *cm, std::ptr::null_mut());
        // SAFETY: a mounted client no other thread is using (write lock).
        let r = check(unsafe { (self.api.ceph_unmount)(handle) });
        // SAFETY: as above; released whether or not the unmount was clean.
        unsafe { (self.api.ceph_release)(handle) };
        r.map(|_| ())
    }

    /// A configuration value of the client (`client_cache_size`...).
    pub fn conf_get(&self, option: &str) -> Result<String, Errno> {
        let option = cstr(option)?;
        self.with(|api, cm| {
            let mut buf = vec![0u8; 4096];
            // SAFETY: a live client and a buffer of the stated size.
            check(unsafe { (api.ceph_conf_get)(cm, option.as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len()) })?;
            let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
        })
    }

    fn path_call(&self, path: &str, f: impl FnOnce(&Api, Cmount, *const c_char) -> c_int) -> Result<c_int, Errno> {
        let path = cstr(path)?;
        self.with(|api, cm| check(f(api, cm, path.as_ptr())))
    }

    fn two_path_call(&self, a: &str, b: &str, f: impl FnOnce(&Api, Cmount, *const c_char, *const c_char) -> c_int) -> Result<(), Errno> {
        let (a, b) = (cstr(a)?, cstr(b)?);
        self.with(|api, cm| check(f(api, cm, a.as_ptr(), b.as_ptr())).map(|_| ()))
    }

    /// stat (`follow`) or lstat.
    fn raw_stat(&self, path: &str, follow: bool) -> Result<Stat, Errno> {
        let mut stx = CephStatx::zeroed();
        let flags = if follow { 0 } else { ffi::AT_SYMLINK_NOFOLLOW };
        // SAFETY: a live client, a NUL-terminated path, a statx to fill.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_statx)(cm, p, &mut stx, ffi::CEPH_STATX_BASIC_STATS | ffi::CEPH_STATX_BTIME, flags) })?;
        Ok(Stat { dev: self.dev, ..Stat::from(&stx) })
    }

    pub fn fstat(&self, fd: i32) -> Result<Stat, Errno> {
        let mut stx = CephStatx::zeroed();
        // SAFETY: a live client and a statx to fill; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_fstatx)(cm, fd, &mut stx, ffi::CEPH_STATX_BASIC_STATS | ffi::CEPH_STATX_BTIME, 0) }))?;
        Ok(Stat { dev: self.dev, ..Stat::from(&stx) })
    }

    /// Opens a file; returns the client's file descriptor.
    fn raw_open(&self, path: &str, flags: i32, mode: u32) -> Result<i32, Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_open)(cm, p, flags, mode) })
    }

    pub fn close(&self, fd: i32) -> Result<(), Errno> {
        // SAFETY: a live client; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_close)(cm, fd) }).map(|_| ()))
    }

    /// Reads into `buf` at `offset`, or at the file's position when it is None.
    pub fn read(&self, fd: i32, buf: &mut [u8], offset: Option<u64>) -> Result<usize, Errno> {
        let off = offset.map_or(-1, |o| o as i64);
        // SAFETY: `buf` is writable for its whole length.
        self.with(|api, cm| check(unsafe { (api.ceph_read)(cm, fd, buf.as_mut_ptr() as *mut c_char, buf.len() as i64, off) }).map(|n| n as usize))
    }

    /// Writes `buf` at `offset`, or at the file's position when it is None.
    pub fn write(&self, fd: i32, buf: &[u8], offset: Option<u64>) -> Result<usize, Errno> {
        let off = offset.map_or(-1, |o| o as i64);
        // SAFETY: `buf` is readable for its whole length.
        self.with(|api, cm| check(unsafe { (api.ceph_write)(cm, fd, buf.as_ptr() as *const c_char, buf.len() as i64, off) }).map(|n| n as usize))
    }

    /// The entries of a directory, without '.' and '..'.
    fn raw_readdir(&self, path: &str) -> Result<Vec<Entry>, Errno> {
        let path = cstr(path)?;
        self.with(|api, cm| {
            let mut dir: DirResult = std::ptr::null_mut();
            // SAFETY: a live client; `dir` is closed below on every path.
            check(unsafe { (api.ceph_opendir)(cm, path.as_ptr(), &mut dir) })?;
            // Past '.' and '..': libcephfs 16 asks the MDS for their
            // attributes (recursive stats, a cap it never holds) on every
            // listing, where the entries themselves come from its cache.
            // SAFETY: an open dir; 2 is the offset after '.' and '..'.
            unsafe { (api.ceph_seekdir)(cm, dir, 2) };
            let mut entries = Vec::new();
            // Many entries per call (one lock round in the client), where
            // readdir_r takes one call an entry.
            // SAFETY: zeroed dirents are a valid buffer for getdents to fill.
            let mut batch: Vec<libc::dirent> = vec![unsafe { std::mem::zeroed() }; 128];
            let size = std::mem::size_of::<libc::dirent>();
            let result = loop {
                // SAFETY: an open dir and a buffer of `batch.len()` dirents.
                let r = unsafe { (api.ceph_getdents)(cm, dir, batch.as_mut_ptr() as *mut c_char, (batch.len() * size) as c_int) };
                if r < 0 {
                    break Err(Errno(-r));
                }
                if r == 0 {
                    break Ok(entries);
                }
                for de in &batch[..r as usize / size] {
                    // SAFETY: getdents NUL-terminates d_name.
                    let name = unsafe { CStr::from_ptr(de.d_name.as_ptr()) }.to_string_lossy();
                    if name != "." && name != ".." {
                        entries.push(Entry { name: name.into_owned(), kind: de.d_type });
                    }
                }
            };
            // SAFETY: opened above, closed once.
            unsafe { (api.ceph_closedir)(cm, dir) };
            result
        })
    }

    fn raw_mkdir(&self, path: &str, mode: u32) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_mkdir)(cm, p, mode) }).map(|_| ())
    }

    /// mkdir -p.
    fn raw_mkdirs(&self, path: &str, mode: u32) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        match self.path_call(path, |api, cm, p| unsafe { (api.ceph_mkdirs)(cm, p, mode) }) {
            Ok(_) | Err(Errno(libc::EEXIST)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn raw_rmdir(&self, path: &str) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_rmdir)(cm, p) }).map(|_| ())
    }

    fn raw_unlink(&self, path: &str) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_unlink)(cm, p) }).map(|_| ())
    }

    fn raw_rename(&self, from: &str, to: &str) -> Result<(), Errno> {
        // SAFETY: a live client and NUL-terminated paths.
        self.two_path_call(from, to, |api, cm, a, b| unsafe { (api.ceph_rename)(cm, a, b) })
    }

    /// link(2) does not follow a symlink at `existing`, where ceph_link
    /// does: through the low-level interface, which walks without following.
    fn raw_link(&self, existing: &str, path: &str) -> Result<(), Errno> {
        let (dir, name) = path.rsplit_once('/').ok_or(Errno(libc::EINVAL))?;
        let (existing, dir, name) = (cstr(existing)?, cstr(if dir.is_empty() { "/" } else { dir })?, cstr(name)?);
        self.with(|api, cm| {
            let mut stx = CephStatx::zeroed();
            let (mut src, mut parent): (ffi::Inode, ffi::Inode) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: a live client; every inode a walk returns is put below.
            unsafe {
                let perms = (api.ceph_mount_perms)(cm);
                let r = check((api.ceph_ll_walk)(cm, existing.as_ptr(), &mut src, &mut stx, 0, ffi::AT_SYMLINK_NOFOLLOW, perms))
                    .and_then(|_| check((api.ceph_ll_walk)(cm, dir.as_ptr(), &mut parent, &mut stx, 0, 0, perms)))
                    .and_then(|_| check((api.ceph_ll_link)(cm, src, parent, name.as_ptr(), perms)));
                for inode in [src, parent] {
                    if !inode.is_null() {
                        (api.ceph_ll_put)(cm, inode);
                    }
                }
                r.map(|_| ())
            }
        })
    }

    fn raw_symlink(&self, target: &str, path: &str) -> Result<(), Errno> {
        // SAFETY: a live client and NUL-terminated strings.
        self.two_path_call(target, path, |api, cm, a, b| unsafe { (api.ceph_symlink)(cm, a, b) })
    }

    fn raw_readlink(&self, path: &str) -> Result<String, Errno> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: a live client and a buffer of the stated size.
        let n = self.path_call(path, |api, cm, p| unsafe { (api.ceph_readlink)(cm, p, buf.as_mut_ptr() as *mut c_char, buf.len() as i64) })?;
        buf.truncate(n as usize);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn raw_truncate(&self, path: &str, size: u64) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_truncate)(cm, p, size as i64) }).map(|_| ())
    }

    pub fn ftruncate(&self, fd: i32, size: u64) -> Result<(), Errno> {
        // SAFETY: a live client; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_ftruncate)(cm, fd, size as i64) }).map(|_| ()))
    }

    pub fn fchmod(&self, fd: i32, mode: u32) -> Result<(), Errno> {
        // SAFETY: a live client; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_fchmod)(cm, fd, mode) }).map(|_| ()))
    }

    pub fn fchown(&self, fd: i32, uid: i32, gid: i32) -> Result<(), Errno> {
        // SAFETY: a live client; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_fchown)(cm, fd, uid, gid) }).map(|_| ()))
    }

    /// Sets the access and modification times (nanoseconds since the epoch) of an open file.
    pub fn futimes(&self, fd: i32, atime_ns: i128, mtime_ns: i128) -> Result<(), Errno> {
        let mut times = [timespec_of(atime_ns), timespec_of(mtime_ns)];
        // SAFETY: a live client and two timespecs, as futimens(2) takes them; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_futimens)(cm, fd, times.as_mut_ptr()) }).map(|_| ()))
    }

    pub fn fsync(&self, fd: i32, data_only: bool) -> Result<(), Errno> {
        // SAFETY: a live client; a bad fd is EBADF.
        self.with(|api, cm| check(unsafe { (api.ceph_fsync)(cm, fd, data_only as c_int) }).map(|_| ()))
    }

    fn raw_chmod(&self, path: &str, mode: u32) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_chmod)(cm, p, mode) }).map(|_| ())
    }

    fn raw_chown(&self, path: &str, uid: i32, gid: i32) -> Result<(), Errno> {
        // SAFETY: a live client and a NUL-terminated path.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_chown)(cm, p, uid, gid) }).map(|_| ())
    }

    /// Sets the access and modification times (nanoseconds since the epoch), following symlinks.
    fn raw_utimes(&self, path: &str, atime_ns: i128, mtime_ns: i128) -> Result<(), Errno> {
        let mut stx = CephStatx::zeroed();
        stx.stx_atime = timespec_of(atime_ns);
        stx.stx_mtime = timespec_of(mtime_ns);
        // SAFETY: a live client, a path and a statx carrying the times.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_setattrx)(cm, p, &mut stx, ffi::CEPH_SETATTR_ATIME | ffi::CEPH_SETATTR_MTIME, 0) })
            .map(|_| ())
    }

    fn raw_statfs(&self, path: &str) -> Result<StatFs, Errno> {
        // SAFETY: zeroed statvfs is a valid buffer to fill.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a live client, a path and a statvfs to fill.
        self.path_call(path, |api, cm, p| unsafe { (api.ceph_statfs)(cm, p, &mut st) })?;
        Ok(StatFs { bsize: st.f_bsize, blocks: st.f_blocks, bfree: st.f_bfree, bavail: st.f_bavail, files: st.f_files, ffree: st.f_ffree })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}
