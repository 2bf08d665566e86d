//! Shared-memory segments for the Polytropon native cores.
//!
//! A [`Segment`] is a mapping of either a named POSIX shared-memory object
//! (`/dev/shm/NAME`, created `0600` so only its owner can open it) or an
//! anonymous shared mapping (private to the process and the children it forks).
//! Both are mapped `MAP_SHARED`, so futexes placed in them must be the shared
//! (non-`FUTEX_PRIVATE`) kind, and all structures placed in them must be
//! position-independent: each process maps the segment at its own address.
//!
//! The crate is internal: rcqb, smo-copy and ipc share it, nothing else should.

use std::ffi::CString;
use std::io;
use std::ptr::NonNull;

/// Longest name accepted, leading `/` included (NAME_MAX of tmpfs).
pub const MAX_NAME_LEN: usize = 255;

/// A mapped shared-memory segment. Unmapped on drop; a named segment's name
/// stays in `/dev/shm` until [`Segment::unlink`] is called.
#[derive(Debug)]
pub struct Segment {
    ptr: NonNull<u8>,
    len: usize,
    name: Option<String>,
}

// SAFETY: a Segment is a plain address range; the memory itself is shared by
// design, and the structures placed in it synchronise with atomics.
unsafe impl Send for Segment {}
// SAFETY: as above; &Segment only hands out the base pointer and length.
unsafe impl Sync for Segment {}

/// Turns a user-facing name (`queue-1` or `/queue-1`) into the POSIX form
/// (`/queue-1`), rejecting names the kernel would misread.
pub fn normalize_name(name: &str) -> io::Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.len() < MAX_NAME_LEN
        && bare != "."
        && bare != ".."
        && !bare.contains('/')
        && !bare.contains('\0');
    if !valid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid shared-memory name {name:?}: use 1-254 characters without '/' or NUL"),
        ));
    }
    Ok(format!("/{bare}"))
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Closes a file descriptor when dropped (the mapping outlives it).
struct Fd(libc::c_int);
impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this guard and closed once.
        unsafe { libc::close(self.0) };
    }
}

fn map(fd: libc::c_int, len: usize) -> io::Result<NonNull<u8>> {
    let flags = if fd < 0 { libc::MAP_SHARED | libc::MAP_ANONYMOUS } else { libc::MAP_SHARED };
    // SAFETY: a fresh mapping chosen by the kernel; no existing memory is touched.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Segment {
    /// Creates a new named segment of `len` bytes, zero-filled, mode `0600`.
    /// Fails with `AlreadyExists` if the name is taken.
    pub fn create(name: &str, len: usize) -> io::Result<Segment> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "segment length must be > 0"));
        }
        let name = normalize_name(name)?;
        let cname = c_name(&name)?;
        // SAFETY: cname is a valid NUL-terminated string.
        let fd = Fd(check(unsafe {
            libc::shm_open(cname.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC, 0o600)
        })?);
        let sized = (|| {
            // The umask cannot widen 0600, but a restrictive one could narrow it
            // to unusable; set the mode explicitly.
            // SAFETY: fd is open and owned.
            check(unsafe { libc::fchmod(fd.0, 0o600) })?;
            // SAFETY: fd is open and owned; length checked to fit off_t below.
            let off = libc::off_t::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
            check(unsafe { libc::ftruncate(fd.0, off) })?;
            map(fd.0, len)
        })();
        match sized {
            Ok(ptr) => Ok(Segment { ptr, len, name: Some(name) }),
            Err(e) => {
                // Do not leave a half-made name behind.
                // SAFETY: cname is valid.
                unsafe { libc::shm_unlink(cname.as_ptr()) };
                Err(e)
            }
        }
    }

    /// Opens and maps an existing named segment, whole.
    pub fn open(name: &str) -> io::Result<Segment> {
        let name = normalize_name(name)?;
        let cname = c_name(&name)?;
        // SAFETY: cname is a valid NUL-terminated string.
        let fd = Fd(check(unsafe { libc::shm_open(cname.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) })?);
        // SAFETY: zeroed stat is a valid out-parameter; fd is open.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstat(fd.0, &mut st) })?;
        let len = usize::try_from(st.st_size).unwrap_or(0);
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("shared-memory segment {name} is empty")));
        }
        let ptr = map(fd.0, len)?;
        Ok(Segment { ptr, len, name: Some(name) })
    }

    /// Maps `len` zero-filled bytes shared with nothing but this process's
    /// threads and the children it forks afterwards.
    pub fn anonymous(len: usize) -> io::Result<Segment> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "segment length must be > 0"));
        }
        Ok(Segment { ptr: map(-1, len)?, len, name: None })
    }

    /// Removes a name from `/dev/shm`. Processes that have it mapped keep their
    /// mappings; the memory is freed when the last one unmaps it.
    pub fn unlink(name: &str) -> io::Result<()> {
        let cname = c_name(&normalize_name(name)?)?;
        // SAFETY: cname is a valid NUL-terminated string.
        check(unsafe { libc::shm_unlink(cname.as_ptr()) }).map(|_| ())
    }

    /// Base address of the mapping in this process.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: segments have at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The POSIX name (`/name`), or `None` for an anonymous segment.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe exactly the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(tag: &str) -> String {
        format!("polytropon-shm-test-{tag}-{}", std::process::id())
    }

    #[test]
    fn named_segment_is_shared_between_mappings_and_private_to_owner() {
        let name = unique("shared");
        let a = Segment::create(&name, 4096).unwrap();
        let b = Segment::open(&name).unwrap();
        assert_eq!(b.len(), 4096);
        // SAFETY: both mappings are 4096 bytes long.
        unsafe {
            a.as_ptr().add(100).write_volatile(42);
            assert_eq!(b.as_ptr().add(100).read_volatile(), 42);
        }
        let mode = std::fs::metadata(format!("/dev/shm/{name}")).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        });
        assert_eq!(mode.unwrap(), 0o600);
        Segment::unlink(&name).unwrap();
        assert_eq!(Segment::open(&name).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn create_refuses_an_existing_name() {
        let name = unique("excl");
        let _a = Segment::create(&name, 64).unwrap();
        assert_eq!(Segment::create(&name, 64).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        Segment::unlink(&name).unwrap();
    }

    #[test]
    fn bad_names_and_lengths_are_rejected() {
        for bad in ["", "/", "a/b", "..", &"x".repeat(300)] {
            assert_eq!(Segment::create(bad, 64).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(Segment::anonymous(0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(normalize_name("q").unwrap(), "/q");
        assert_eq!(normalize_name("/q").unwrap(), "/q");
    }

    #[test]
    fn anonymous_segment_is_zeroed() {
        let s = Segment::anonymous(1 << 16).unwrap();
        // SAFETY: the mapping is 64 KiB long.
        let bytes = unsafe { std::slice::from_raw_parts(s.as_ptr(), s.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
        assert!(s.name().is_none());
    }
}
