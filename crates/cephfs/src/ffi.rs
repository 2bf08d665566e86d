//! libcephfs's C interface, as far as this crate uses it: the types whose
//! layout Rust must match (checked against the installed headers by
//! `tests/layout.rs`) and the table of functions looked up with dlsym.
use libc::{c_char, c_int, c_uint, c_void, mode_t, statvfs, timespec};

/// `struct ceph_statx` of `<cephfs/ceph_ll_client.h>`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CephStatx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_dev: u64,
    pub stx_rdev: u64,
    pub stx_atime: timespec,
    pub stx_ctime: timespec,
    pub stx_mtime: timespec,
    pub stx_btime: timespec,
    pub stx_version: u64,
}

impl CephStatx {
    pub fn zeroed() -> Self {
        // SAFETY: plain integers and timespecs; all zeroes is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

/// What a statx asks for: the fields of stat(2) and the birth time.
pub const CEPH_STATX_BASIC_STATS: c_uint = 0x7ff;
pub const CEPH_STATX_BTIME: c_uint = 0x800;
pub const AT_SYMLINK_NOFOLLOW: c_uint = 0x100;
pub const CEPH_SETATTR_MTIME: c_int = 1 << 3;
pub const CEPH_SETATTR_ATIME: c_int = 1 << 4;

/// An opaque `struct ceph_mount_info *`.
pub type Cmount = *mut c_void;
/// An opaque `struct Inode *` of the low-level interface.
pub type Inode = *mut c_void;
/// An opaque `struct ceph_dir_result *`.
pub type DirResult = *mut c_void;

macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// The libcephfs functions, resolved once when the library is loaded.
        #[allow(non_snake_case)]
        pub struct Api {
            $(pub $name: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        impl Api {
            /// Looks every function up in `lib`; the first one missing is the error.
            ///
            /// # Safety
            /// `lib` must be libcephfs, whose functions have these signatures.
            pub unsafe fn resolve(lib: &libloading::Library) -> Result<Api, String> {
                Ok(Api {
                    $($name: *lib
                        .get::<unsafe extern "C" fn($($arg),*) -> $ret>(concat!(stringify!($name), "\0").as_bytes())
                        .map_err(|e| format!("{}: {e}", stringify!($name)))?,)*
                })
            }
        }
    };
}

api! {
    ceph_version: fn(*mut c_int, *mut c_int, *mut c_int) -> *const c_char;
    ceph_create: fn(*mut Cmount, *const c_char) -> c_int;
    ceph_conf_read_file: fn(Cmount, *const c_char) -> c_int;
    ceph_conf_parse_env: fn(Cmount, *const c_char) -> c_int;
    ceph_conf_set: fn(Cmount, *const c_char, *const c_char) -> c_int;
    ceph_conf_get: fn(Cmount, *const c_char, *mut c_char, usize) -> c_int;
    ceph_select_filesystem: fn(Cmount, *const c_char) -> c_int;
    ceph_mount: fn(Cmount, *const c_char) -> c_int;
    ceph_get_fs_cid: fn(Cmount) -> i64;
    ceph_unmount: fn(Cmount) -> c_int;
    ceph_release: fn(Cmount) -> c_int;
    ceph_statx: fn(Cmount, *const c_char, *mut CephStatx, c_uint, c_uint) -> c_int;
    ceph_fstatx: fn(Cmount, c_int, *mut CephStatx, c_uint, c_uint) -> c_int;
    ceph_setattrx: fn(Cmount, *const c_char, *mut CephStatx, c_int, c_int) -> c_int;
    ceph_open: fn(Cmount, *const c_char, c_int, mode_t) -> c_int;
    ceph_close: fn(Cmount, c_int) -> c_int;
    ceph_read: fn(Cmount, c_int, *mut c_char, i64, i64) -> c_int;
    ceph_write: fn(Cmount, c_int, *const c_char, i64, i64) -> c_int;
    ceph_opendir: fn(Cmount, *const c_char, *mut DirResult) -> c_int;
    ceph_getdents: fn(Cmount, DirResult, *mut c_char, c_int) -> c_int;
    ceph_closedir: fn(Cmount, DirResult) -> c_int;
    ceph_seekdir: fn(Cmount, DirResult, i64) -> ();
    ceph_mkdir: fn(Cmount, *const c_char, mode_t) -> c_int;
    ceph_mkdirs: fn(Cmount, *const c_char, mode_t) -> c_int;
    ceph_rmdir: fn(Cmount, *const c_char) -> c_int;
    ceph_unlink: fn(Cmount, *const c_char) -> c_int;
    ceph_rename: fn(Cmount, *const c_char, *const c_char) -> c_int;
    ceph_symlink: fn(Cmount, *const c_char, *const c_char) -> c_int;
    ceph_readlink: fn(Cmount, *const c_char, *mut c_char, i64) -> c_int;
    ceph_truncate: fn(Cmount, *const c_char, i64) -> c_int;
    ceph_ftruncate: fn(Cmount, c_int, i64) -> c_int;
    ceph_fsync: fn(Cmount, c_int, c_int) -> c_int;
    ceph_chmod: fn(Cmount, *const c_char, mode_t) -> c_int;
    ceph_chown: fn(Cmount, *const c_char, c_int, c_int) -> c_int;
    ceph_fchmod: fn(Cmount, c_int, mode_t) -> c_int;
    ceph_fchown: fn(Cmount, c_int, c_int, c_int) -> c_int;
    ceph_futimens: fn(Cmount, c_int, *mut timespec) -> c_int;
    ceph_statfs: fn(Cmount, *const c_char, *mut statvfs) -> c_int;
    ceph_mount_perms: fn(Cmount) -> *mut c_void;
    ceph_ll_walk: fn(Cmount, *const c_char, *mut Inode, *mut CephStatx, c_uint, c_uint, *const c_void) -> c_int;
    ceph_ll_link: fn(Cmount, Inode, Inode, *const c_char, *const c_void) -> c_int;
    ceph_ll_put: fn(Cmount, Inode) -> c_int;
}
