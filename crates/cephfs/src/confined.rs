//! The public path operations of a [`Mount`]: confined to its root, with
//! the kernel's rules for paths.
//!
//! libcephfs mounted at a directory does not confine: '..' at that root
//! climbs to its parent, and so does a symlink whose target does. So every
//! path is resolved here, one component below the root at a time (lstat,
//! and readlink for a symlink, both answered from the client's cache while
//! it holds the capabilities), and libcephfs gets a path with no '..' and
//! no symlink but possibly the final one: '..' stops at the root and
//! absolute symlinks resolve from it, as openat2's RESOLVE_IN_ROOT. A
//! rename by another client between the resolution and the call can still
//! swap a directory for a symlink (the same window as the local libservice).
//!
//! The walk also gives the kernel's answers where libcephfs differs: a
//! file in the middle of a path is ENOTDIR (libcephfs says EACCES when it
//! has no x bit), a trailing '/' or final '.' names a directory, and the
//! root is never removed or renamed.
use crate::{Errno, Mount, Stat, StatFs};
use libc::{EBUSY, EEXIST, EINVAL, EISDIR, ELOOP, ENOENT, ENOTDIR, ENOTEMPTY, EPERM};
use std::collections::VecDeque;

/// How many symlinks one path may pass through (Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;

fn err<T>(e: i32) -> Result<T, Errno> {
    Err(Errno(e))
}

const S_IFMT: u32 = libc::S_IFMT;

fn is_dir(st: &Stat) -> bool {
    st.mode & S_IFMT == libc::S_IFDIR
}

fn is_symlink(st: &Stat) -> bool {
    st.mode & S_IFMT == libc::S_IFLNK
}

/// How a path ends, for the rules of its last component.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tail {
    None,
    /// A trailing '/': it must be a directory.
    Slash,
    /// A final '.': the directory itself.
    Dot,
    /// A final '..'.
    DotDot,
}

fn tail(path: &str) -> Tail {
    if path.len() > 1 && path.ends_with('/') {
        Tail::Slash
    } else if path.ends_with("/.") || path == "." {
        Tail::Dot
    } else if path.ends_with("/..") || path == ".." {
        Tail::DotDot
    } else {
        Tail::None
    }
}

/// What the walk found at the end of a path.
#[derive(Debug)]
enum Final {
    /// Nothing there (its directory exists).
    Missing,
    /// The attributes of what is there (of a symlink when not followed).
    Present(Stat),
    /// A directory reached by '..' or the root: it exists, attributes not fetched.
    Directory,
}

#[derive(Debug)]
struct Resolved {
    /// The path for libcephfs: absolute, no '.', '..' or symlink before the last component.
    path: String,
    found: Final,
    tail: Tail,
}

impl Resolved {
    fn is_root(&self) -> bool {
        self.path == "/"
    }

    fn exists(&self) -> bool {
        !matches!(self.found, Final::Missing)
    }

    fn is_dir(&self) -> bool {
        match &self.found {
            Final::Present(st) => is_dir(st),
            Final::Directory => true,
            Final::Missing => false,
        }
    }

    fn must_exist(&self) -> Result<&Self, Errno> {
        if self.exists() {
            Ok(self)
        } else {
            err(ENOENT)
        }
    }
}

fn join(stack: &[String]) -> String {
    let mut p = String::with_capacity(stack.iter().map(|c| c.len() + 1).sum::<usize>().max(1));
    for c in stack {
        p.push('/');
        p.push_str(c);
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

impl Mount {
    /// Resolves `path` beneath the root: every symlink on the way, and the
    /// final one when `follow` (or when the path ends in '/' or '.', which
    /// name a directory: a lookup follows a final symlink for them).
    fn resolve(&self, path: &str, follow: bool) -> Result<Resolved, Errno> {
        let r = self.walk(path, follow || matches!(tail(path), Tail::Slash | Tail::Dot))?;
        if matches!(r.tail, Tail::Slash | Tail::Dot) && r.exists() && !r.is_dir() {
            return err(ENOTDIR);
        }
        Ok(r)
    }

    /// Resolves the entry a call makes or removes (mkdir, rmdir, unlink,
    /// rename, the new name of link and symlink): a final symlink is that
    /// entry even before a trailing '/' (rmdir("l/") is ENOTDIR and
    /// mkdir("l/") EEXIST on Linux, never the link's target); each call
    /// applies the trailing-slash rules itself.
    fn entry(&self, path: &str) -> Result<Resolved, Errno> {
        self.walk(path, tail(path) == Tail::Dot)
    }

    fn walk(&self, path: &str, follow: bool) -> Result<Resolved, Errno> {
        if !path.starts_with('/') || path.contains('\0') {
            return err(EINVAL);
        }
        let tail = tail(path);
        let mut queue: VecDeque<String> = path.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_owned).collect();
        let mut stack: Vec<String> = Vec::with_capacity(queue.len());
        let mut links = 0;
        let mut found = Final::Directory;
        while let Some(name) = queue.pop_front() {
            if name == ".." {
                stack.pop(); // at the root, '..' is the root
                found = Final::Directory;
                continue;
            }
            let last = queue.is_empty();
            stack.push(name);
            let st = match self.raw_stat(&join(&stack), false) {
                Ok(st) => st,
                Err(Errno(ENOENT)) if last => {
                    found = Final::Missing;
                    break;
                }
                Err(e) => return Err(e),
            };
            if is_symlink(&st) && (!last || follow) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return err(ELOOP);
                }
                let target = self.raw_readlink(&join(&stack))?;
                stack.pop();
                if target.starts_with('/') {
                    stack.clear();
                }
                for c in target.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                    queue.push_front(c.to_owned());
                }
                found = Final::Directory; // a link to '/' or '.' ends at a directory
                continue;
            }
            if !last && !is_dir(&st) {
                return err(ENOTDIR);
            }
            found = Final::Present(st);
        }
        Ok(Resolved { path: join(&stack), found, tail })
    }

    /// stat (`follow`) or lstat of a path.
    pub fn stat(&self, path: &str, follow: bool) -> Result<Stat, Errno> {
        let r = self.resolve(path, follow)?;
        match r.found {
            Final::Present(st) => Ok(st),
            Final::Missing => err(ENOENT),
            Final::Directory => self.raw_stat(&r.path, false),
        }
    }

    /// Opens (O_CREAT: creates) a file; returns the client's descriptor.
    pub fn open(&self, path: &str, flags: i32, mode: u32) -> Result<i32, Errno> {
        let creat = flags & libc::O_CREAT != 0;
        let excl = creat && flags & libc::O_EXCL != 0;
        let follow = flags & libc::O_NOFOLLOW == 0 && !excl;
        let r = self.resolve(path, follow)?;
        match &r.found {
            Final::Missing if !creat => return err(ENOENT),
            Final::Missing if r.tail != Tail::None => return err(EISDIR),
            Final::Present(_) | Final::Directory if excl => return err(EEXIST),
            Final::Present(st) if is_symlink(st) => return err(ELOOP),
            _ => {}
        }
        if flags & libc::O_DIRECTORY != 0 && r.exists() && !r.is_dir() {
            return err(ENOTDIR);
        }
        // A directory opens read-only and without O_CREAT or O_TRUNC.
        if r.is_dir() && (flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0) {
            return err(EISDIR);
        }
        // What the walk checked is no symlink: one swapped in since fails.
        self.raw_open(&r.path, flags | libc::O_NOFOLLOW, mode)
    }

    /// The entries of a directory, without '.' and '..'.
    pub fn readdir(&self, path: &str) -> Result<Vec<crate::Entry>, Errno> {
        let r = self.resolve(path, true)?;
        if !r.must_exist()?.is_dir() {
            return err(ENOTDIR);
        }
        self.raw_readdir(&r.path)
    }

    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), Errno> {
        let r = self.entry(path)?;
        match r.found {
            Final::Missing if r.tail == Tail::Dot => err(ENOENT),
            Final::Missing => self.raw_mkdir(&r.path, mode),
            _ => err(EEXIST),
        }
    }

    pub fn rmdir(&self, path: &str) -> Result<(), Errno> {
        match tail(path) {
            Tail::Dot => return err(EINVAL),
            Tail::DotDot => return err(ENOTEMPTY),
            _ => {}
        }
        let r = self.entry(path)?;
        if r.is_root() {
            return err(EBUSY);
        }
        if !r.must_exist()?.is_dir() {
            return err(ENOTDIR);
        }
        self.raw_rmdir(&r.path)
    }

    pub fn unlink(&self, path: &str) -> Result<(), Errno> {
        let r = self.entry(path)?;
        if r.must_exist()?.is_dir() {
            return err(EISDIR);
        }
        if r.tail != Tail::None {
            return err(ENOTDIR);
        }
        self.raw_unlink(&r.path)
    }

    /// Renames; with `no_replace`, fails with EEXIST when `to` exists
    /// (checked, then renamed: libcephfs has no RENAME_NOREPLACE).
    pub fn rename(&self, from: &str, to: &str, no_replace: bool) -> Result<(), Errno> {
        if [tail(from), tail(to)].iter().any(|t| matches!(t, Tail::Dot | Tail::DotDot)) {
            return err(EBUSY);
        }
        // rename(2)'s order: both directories, the source (ENOENT), the
        // destination with RENAME_NOREPLACE (EEXIST, even onto itself),
        // trailing slashes on a non-directory (ENOTDIR), a directory into
        // itself (EINVAL), onto an ancestor of the source (ENOTEMPTY), then
        // nothing to do for the same file, then the types of both.
        // With RENAME_NOREPLACE the source is looked up first, as the
        // conformance oracle does (node:fs has no renameat2 to ask).
        let a = self.entry(from)?;
        if no_replace {
            a.must_exist()?;
        }
        let b = self.entry(to)?;
        a.must_exist()?;
        if a.is_root() || b.is_root() {
            return err(EBUSY);
        }
        if b.exists() && no_replace {
            return err(EEXIST);
        }
        if (a.tail == Tail::Slash || b.tail == Tail::Slash) && !a.is_dir() {
            return err(ENOTDIR);
        }
        let below = |x: &str, y: &str| x.len() > y.len() && x.starts_with(y) && x.as_bytes()[y.len()] == b'/';
        if a.is_dir() && below(&b.path, &a.path) {
            return err(EINVAL);
        }
        if below(&a.path, &b.path) {
            return err(ENOTEMPTY);
        }
        if a.path == b.path {
            return Ok(());
        }
        if b.exists() {
            if a.is_dir() && !b.is_dir() {
                return err(ENOTDIR);
            }
            if !a.is_dir() && b.is_dir() {
                return err(EISDIR);
            }
        }
        self.raw_rename(&a.path, &b.path)
    }

    /// A hard link `path` to the file `existing` (not followed if a symlink).
    pub fn link(&self, existing: &str, path: &str) -> Result<(), Errno> {
        // link(2)'s order: the whole source, then the new name's directory
        // and the name itself, then whether a directory may be linked.
        let a = self.resolve(existing, false)?;
        a.must_exist()?;
        let b = self.entry(path)?;
        if b.exists() {
            return err(EEXIST);
        }
        if b.tail != Tail::None {
            return err(ENOENT);
        }
        if a.is_dir() {
            return err(EPERM);
        }
        self.raw_link(&a.path, &b.path)
    }

    /// A symlink at `path` holding `target` (any string: resolved when used).
    pub fn symlink(&self, target: &str, path: &str) -> Result<(), Errno> {
        if target.is_empty() {
            return err(ENOENT);
        }
        let r = self.entry(path)?;
        if r.exists() {
            return err(EEXIST);
        }
        if r.tail != Tail::None {
            return err(ENOENT);
        }
        self.raw_symlink(target, &r.path)
    }

    pub fn readlink(&self, path: &str) -> Result<String, Errno> {
        let r = self.resolve(path, false)?;
        match r.must_exist()?.found {
            Final::Present(st) if is_symlink(&st) => self.raw_readlink(&r.path),
            _ => err(EINVAL),
        }
    }

    pub fn truncate(&self, path: &str, size: u64) -> Result<(), Errno> {
        let r = self.resolve(path, true)?;
        if r.must_exist()?.is_dir() {
            return err(EISDIR);
        }
        self.raw_truncate(&r.path, size)
    }

    fn existing(&self, path: &str) -> Result<Resolved, Errno> {
        let r = self.resolve(path, true)?;
        r.must_exist()?;
        Ok(r)
    }

    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), Errno> {
        self.raw_chmod(&self.existing(path)?.path, mode)
    }

    pub fn chown(&self, path: &str, uid: i32, gid: i32) -> Result<(), Errno> {
        self.raw_chown(&self.existing(path)?.path, uid, gid)
    }

    /// Sets the access and modification times (nanoseconds since the epoch), following symlinks.
    pub fn utimes(&self, path: &str, atime_ns: i128, mtime_ns: i128) -> Result<(), Errno> {
        self.raw_utimes(&self.existing(path)?.path, atime_ns, mtime_ns)
    }

    pub fn statfs(&self, path: &str) -> Result<StatFs, Errno> {
        self.raw_statfs(&self.existing(path)?.path)
    }

    /// access(2) for the client's user (`uid`, `gid`): F_OK, or R_OK | W_OK | X_OK.
    /// Root may read and write anything and execute what has an x bit.
    pub fn access(&self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<(), Errno> {
        let st = self.stat(path, true)?;
        let want = mode & 7;
        let allowed = if uid == 0 {
            let x = if st.mode & 0o111 != 0 || is_dir(&st) { 1 } else { 0 };
            6 | x
        } else if st.uid == uid {
            (st.mode >> 6) & 7
        } else if st.gid == gid {
            (st.mode >> 3) & 7
        } else {
            st.mode & 7
        };
        if want & !allowed != 0 {
            err(libc::EACCES)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(tail("/"), Tail::None);
        assert_eq!(tail("/a/"), Tail::Slash);
        assert_eq!(tail("/a/."), Tail::Dot);
        assert_eq!(tail("/a/.."), Tail::DotDot);
        assert_eq!(tail("/a.."), Tail::None);
        assert_eq!(join(&[]), "/");
        assert_eq!(join(&["a".into(), "b".into()]), "/a/b");
    }
}
