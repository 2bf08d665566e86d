use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::PathBuf;

use std::sync::Arc;

use super::*;

/// A scratch tree: `<tmp>/root` served, `<tmp>/outside` beside it.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let base = std::env::temp_dir().join(format!("polytropon-local-instance-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        fs::create_dir_all(root.join("data/sub")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), b"secret").unwrap();
        fs::write(root.join("data/f"), b"hello").unwrap();
        fs::write(root.join("data/b"), b"").unwrap();
        fs::write(root.join("data/a"), b"").unwrap();
        symlink("data/f", root.join("rel")).unwrap();
        symlink("/data/f", root.join("abs")).unwrap();
        symlink("../outside", root.join("out")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();
        Tree(base)
    }

    fn root(&self) -> String {
        self.0.join("root").to_str().unwrap().to_string()
    }

    fn instances(&self) -> Instances {
        let mut i = Instances::new(Limits::default(), Arc::new(|| {}));
        i.mount("vol", &self.root(), 1000).unwrap();
        i
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn request(path: &str) -> Vec<u8> {
    let mut v = vec![wire::PROTOCOL_VERSION];
    v.extend_from_slice(&(path.len() as u32).to_le_bytes());
    v.extend_from_slice(path.as_bytes());
    v
}

/// (status, ino, size, mode) of a stat reply.
fn stat(i: &mut Instances, opcode: u32, path: &str) -> (i64, u64, u64, u32) {
    let (status, reply) = ask(i, 100, opcode, &request(path)).expect("answered");
    if status < 0 {
        assert!(reply.is_empty());
        return (status, 0, 0, 0);
    }
    let int = |at: usize| u64::from_le_bytes(reply[at..at + 8].try_into().unwrap());
    (status, int(9), int(45), u32::from_le_bytes(reply[17..21].try_into().unwrap()))
}

fn names(i: &mut Instances, path: &str) -> Result<Vec<(u8, String)>, i64> {
    let (status, reply) = ask(i, 100, wire::READDIR, &request(path)).expect("answered");
    if status < 0 {
        return Err(status);
    }
    let count = u32::from_le_bytes(reply[1..5].try_into().unwrap()) as usize;
    let mut at = 5;
    let mut out = Vec::new();
    for _ in 0..count {
        let kind = reply[at];
        let len = u32::from_le_bytes(reply[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((kind, String::from_utf8(reply[at + 5..at + 5 + len].to_vec()).unwrap()));
        at += 5 + len;
    }
    assert_eq!(at, reply.len());
    Ok(out)
}

const ENOENT: i64 = -(libc::ENOENT as i64);

#[test]
fn stat_and_lstat_answer_what_the_kernel_says() {
    let t = Tree::new("stat");
    let mut i = t.instances();
    let f = fs::metadata(t.0.join("root/data/f")).unwrap();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f"), (0, f.ino(), 5, f.mode()));
    assert_eq!(stat(&mut i, wire::STAT, "/vol/rel"), (0, f.ino(), 5, f.mode()), "a symlink is followed");
    let l = fs::symlink_metadata(t.0.join("root/rel")).unwrap();
    assert_eq!(stat(&mut i, wire::LSTAT, "/vol/rel"), (0, l.ino(), l.size(), l.mode()), "lstat does not follow");
    let r = fs::metadata(t.0.join("root")).unwrap();
    assert_eq!(stat(&mut i, wire::STAT, "/vol").1, r.ino(), "the instance alone is its root");
    assert_eq!(stat(&mut i, wire::STAT, "/vol/").1, r.ino());
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/./sub/..//f").1, f.ino());
}

#[test]
fn every_lookup_stays_beneath_the_root() {
    let t = Tree::new("confine");
    let mut i = t.instances();
    let f = fs::metadata(t.0.join("root/data/f")).unwrap();
    let r = fs::metadata(t.0.join("root")).unwrap();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/abs").1, f.ino(), "an absolute symlink resolves from the root");
    assert_eq!(stat(&mut i, wire::STAT, "/vol/../outside/secret").0, ENOENT, "'..' stops at the root");
    assert_eq!(stat(&mut i, wire::STAT, "/vol/out/secret").0, ENOENT, "a symlink cannot lead out");
    assert_eq!(stat(&mut i, wire::STAT, "/vol/up").1, r.ino(), "'..' in a symlink stops at the root");
    assert_eq!(names(&mut i, "/vol/up/..").unwrap(), names(&mut i, "/vol").unwrap());
}

#[test]
fn errors_are_the_kernels() {
    let t = Tree::new("errors");
    let mut i = t.instances();
    let e = |n: i32| -i64::from(n);
    assert_eq!(stat(&mut i, wire::STAT, "/vol/missing").0, ENOENT);
    assert_eq!(stat(&mut i, wire::STAT, "/vol/dangling").0, ENOENT);
    assert_eq!(stat(&mut i, wire::LSTAT, "/vol/dangling").0, 0);
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f/").0, e(libc::ENOTDIR), "a trailing slash on a file");
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f/x").0, e(libc::ENOTDIR));
    assert_eq!(stat(&mut i, wire::STAT, "/vol/loop1").0, e(libc::ELOOP));
    assert_eq!(stat(&mut i, wire::LSTAT, "/vol/loop1").0, 0);
    assert_eq!(stat(&mut i, wire::LSTAT, "/vol/rel/").0, e(libc::ENOTDIR), "a trailing slash follows, even for lstat");
    assert_eq!(names(&mut i, "/vol/data/f"), Err(e(libc::ENOTDIR)));
    assert_eq!(names(&mut i, "/vol/missing"), Err(ENOENT));
    assert_eq!(stat(&mut i, wire::STAT, &format!("/vol/{}", "n".repeat(256))).0, e(libc::ENAMETOOLONG));
    let count = |op| i.counter(op).map(|c| (c.count, c.errors));
    assert_eq!(count(wire::STAT), Some((6, 6)));
    assert_eq!(count(wire::LSTAT), Some((3, 1)));
    assert_eq!(count(wire::READDIR), Some((2, 2)));
}

#[test]
fn readdir_lists_sorted_with_types() {
    let t = Tree::new("readdir");
    let mut i = t.instances();
    let dt = |k: u8, n: &str| (k, n.to_string());
    assert_eq!(names(&mut i, "/vol/data").unwrap(), vec![dt(libc::DT_REG, "a"), dt(libc::DT_REG, "b"), dt(libc::DT_REG, "f"), dt(libc::DT_DIR, "sub")]);
    assert_eq!(names(&mut i, "/vol/data/sub").unwrap(), vec![]);
    let top: Vec<String> = names(&mut i, "/vol").unwrap().into_iter().map(|(_, n)| n).collect();
    assert_eq!(top, ["abs", "dangling", "data", "loop1", "loop2", "out", "rel", "up"]);
}

#[test]
fn what_is_not_its_own_goes_to_the_handler() {
    let t = Tree::new("pass");
    let mut i = t.instances();
    assert!(ask(&mut i, 100, wire::STAT, &request("/other/x")).is_none(), "another instance");
    assert!(ask(&mut i, 100, wire::STAT, &request("vol/x")).is_none(), "a relative path");
    assert!(ask(&mut i, 100, wire::STAT, &request("//vol")).is_none());
    assert!(ask(&mut i, 100, 1, &request("/vol/data/f")).is_none(), "an opcode not answered here");
    assert!(ask(&mut i, 100, wire::STAT, &request("/vol/data/f")[..6]).is_none(), "a request that does not decode");
    i.stopping = true;
    assert!(ask(&mut i, 100, wire::STAT, &request("/vol/data/f")).is_none(), "a stopping service refuses in its handler");
    i.stopping = false;
    assert!(i.unmount("vol"));
    assert!(ask(&mut i, 100, wire::STAT, &request("/vol/data/f")).is_none(), "an unmounted instance");
    assert!(i.mount("vol", "/nonexistent/polytropon", 1).is_err());
    assert!(i.mount("vol", t.0.join("root/data/f").to_str().unwrap(), 1).is_err(), "a root must be a directory");
}

#[test]
fn a_replaced_root_is_opened_again_as_the_javascript_path_sees_it() {
    let t = Tree::new("held");
    let mut i = t.instances();
    let ino = stat(&mut i, wire::STAT, "/vol/data/f").1;
    fs::rename(t.0.join("root"), t.0.join("moved")).unwrap();
    fs::create_dir(t.0.join("root")).unwrap();
    i.check_roots();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f").1, ino, "within one check interval, still the directory held");
    std::thread::sleep(ROOT_CHECK);
    i.check_roots();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f").0, ENOENT, "then the directory the path names now");
    fs::remove_dir(t.0.join("root")).unwrap();
    std::thread::sleep(ROOT_CHECK);
    i.check_roots();
    assert_eq!(i.serve(0, 1, 100, wire::STAT, &request("/vol/data/f")), Served::Pass, "a root gone: the handler answers");
    assert!(i.names().is_empty());
    fs::create_dir(t.0.join("root")).unwrap();
    fs::write(t.0.join("root/g"), b"g").unwrap();
    std::thread::sleep(ROOT_CHECK);
    i.check_roots();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/g").2, 1, "back once the path names a directory again");
    assert_eq!(i.names(), ["vol"]);
    // A handle outlives its stale root, and goes with its instance.
    let h = open(&mut i, 100, "/vol/g", libc::O_RDONLY).unwrap();
    assert!(i.unmount("vol"));
    assert_eq!((i.open_handles(), i.handles_here(100)), (0, 0));
    let _ = h;
    fs::remove_dir_all(t.0.join("moved")).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn hostile_requests_never_panic(opcode in 0u32..30, bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..48), tail in "[a-z./]{0,12}") {
        thread_local!(static TREE: (Tree, std::cell::RefCell<Instances>) = {
            let t = Tree::new("hostile");
            let i = t.instances();
            (t, std::cell::RefCell::new(i))
        });
        TREE.with(|(_, i)| {
            let mut i = i.borrow_mut();
            let _ = ask(&mut i, 100, opcode, &bytes);
            if let Some((status, reply)) = ask(&mut i, 100, opcode, &request(&format!("/vol/{tail}"))) {
                proptest::prop_assert!(status == 0 || reply.is_empty());
            }
            Ok(())
        })?;
    }
}

/// Requests of the handle operations, encoded as protocol.ts does.
mod req {
    use super::wire::PROTOCOL_VERSION;

    fn fields(parts: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![PROTOCOL_VERSION];
        for p in parts {
            v.extend_from_slice(p);
        }
        v
    }
    pub fn open(path: &str, flags: i32, mode: u32) -> Vec<u8> {
        fields(&[&(path.len() as u32).to_le_bytes(), path.as_bytes(), &(flags as u32).to_le_bytes(), &mode.to_le_bytes()])
    }
    pub fn handle(h: u64) -> Vec<u8> {
        fields(&[&h.to_le_bytes()])
    }
    pub fn read(h: u64, length: u32, position: i64) -> Vec<u8> {
        fields(&[&h.to_le_bytes(), &length.to_le_bytes(), &position.to_le_bytes()])
    }
    pub fn write(h: u64, position: i64, data: &[u8]) -> Vec<u8> {
        fields(&[&h.to_le_bytes(), &position.to_le_bytes(), data])
    }
    pub fn truncate(h: u64, length: i64) -> Vec<u8> {
        fields(&[&h.to_le_bytes(), &length.to_le_bytes()])
    }
    pub fn fchmod(h: u64, mode: u32) -> Vec<u8> {
        fields(&[&h.to_le_bytes(), &mode.to_le_bytes()])
    }
    pub fn fchown(h: u64, uid: u32, gid: u32) -> Vec<u8> {
        fields(&[&h.to_le_bytes(), &uid.to_le_bytes(), &gid.to_le_bytes()])
    }
    pub fn futimes(h: u64, atime_ms: f64, mtime_ms: f64) -> Vec<u8> {
        fields(&[&h.to_le_bytes(), &atime_ms.to_le_bytes(), &mtime_ms.to_le_bytes()])
    }
}

/// Serves a request that is answered at once (or passed on: None).
fn ask(i: &mut Instances, pid: u32, opcode: u32, payload: &[u8]) -> Option<(i64, Vec<u8>)> {
    match i.serve(0, 1, pid, opcode, payload) {
        Served::Pass => None,
        Served::Reply(status, reply) => Some((status, reply.to_vec())),
        Served::Later => panic!("opcode {opcode} finished later"),
        Served::InPlace(..) => panic!("opcode {opcode} answered in place, with no area given"),
    }
}

/// A read served into `area`: (status, the reply as the client sees it
/// (the area's part, then what follows it), whether it was in place).
fn read_into(i: &mut Instances, h: u64, length: u32, position: i64, area: &mut [u8]) -> (i64, Vec<u8>, bool) {
    let at = ReplyArea { at: area.as_mut_ptr(), len: area.len() };
    // SAFETY: `area` is a live, writable slice for the call.
    match unsafe { i.serve_into(0, 1, 100, wire::READ, &req::read(h, length, position), Some(at)) } {
        Served::InPlace(status, len, rest) => {
            assert!(len <= area.len() && (rest.is_empty() || len == area.len()), "in place: {len} of {} then {}", area.len(), rest.len());
            (status, [&area[..len], rest].concat(), true)
        }
        Served::Reply(status, reply) => (status, reply.to_vec(), false),
        other => panic!("a read was {other:?}"),
    }
}

/// A flush: taken, then finished on a flushing thread; its status.
fn flush(i: &mut Instances, pid: u32, opcode: u32, h: u64) -> i64 {
    assert_eq!(i.serve(42, 1, pid, opcode, &req::handle(h)), Served::Later);
    assert_eq!(i.flushes_in_flight(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(&(tag, status)) = i.finished().first() {
            assert_eq!((tag, i.flushes_in_flight()), (42, 0));
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "the flush finished");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn open(i: &mut Instances, pid: u32, path: &str, flags: i32) -> Result<u64, i64> {
    let (status, reply) = ask(i, pid, wire::OPEN, &req::open(path, flags, 0o644)).expect("answered");
    if status < 0 {
        return Err(status);
    }
    Ok(u64::from_le_bytes(reply[1..9].try_into().unwrap()))
}

#[test]
fn files_open_read_write_and_close_here() {
    let t = Tree::new("files");
    let mut i = t.instances();
    let h = open(&mut i, 100, "/vol/data/new", libc::O_RDWR | libc::O_CREAT | libc::O_EXCL).unwrap();
    assert!(h >= HANDLE_BASE);
    assert_eq!(fs::metadata(t.0.join("root/data/new")).unwrap().mode() & 0o777, 0o644 & !umask());
    let (status, reply) = ask(&mut i, 100, wire::WRITE, &req::write(h, -1, b"hello world")).unwrap();
    assert_eq!((status, reply[1..9].to_vec()), (0, 11u64.to_le_bytes().to_vec()));
    let (_, reply) = ask(&mut i, 100, wire::READ, &req::read(h, 5, 6)).unwrap();
    assert_eq!(&reply[1..], b"world", "pread at a position");
    let (_, reply) = ask(&mut i, 100, wire::READ, &req::read(h, 100, -1)).unwrap();
    assert_eq!(&reply[1..], b"", "read at the handle's position: at the end");
    assert_eq!(ask(&mut i, 100, wire::FTRUNCATE, &req::truncate(h, 5)).unwrap().0, 0);
    assert_eq!(ask(&mut i, 100, wire::FTRUNCATE, &req::truncate(h, -1)).unwrap().0, -i64::from(libc::EINVAL));
    assert_eq!(flush(&mut i, 100, wire::FSYNC, h), 0);
    assert_eq!(flush(&mut i, 100, wire::FDATASYNC, h), 0);
    assert_eq!(i.serve(7, 1, 200, wire::FSYNC, &req::handle(h)), Served::Pass, "another process's handle");
    // A flush in flight keeps the descriptor open through a close.
    let w = open(&mut i, 100, "/vol/data/new", libc::O_WRONLY).unwrap();
    assert_eq!(ask(&mut i, 100, wire::READ, &req::read(w, 0, 0)).unwrap(), (0, vec![wire::PROTOCOL_VERSION]), "0 bytes: no system call (node:fs), so no EBADF");
    assert_eq!(ask(&mut i, 100, wire::READ, &req::read(w, 1, 0)).unwrap().0, -i64::from(libc::EBADF), "1 byte of a write-only file");
    assert_eq!(i.serve(43, 1, 100, wire::FSYNC, &req::handle(w)), Served::Later);
    assert_eq!(ask(&mut i, 100, wire::CLOSE, &req::handle(w)).unwrap().0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while i.finished() != vec![(43, 0)] {
        assert!(std::time::Instant::now() < deadline, "the flush finished");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let (status, reply) = ask(&mut i, 100, wire::FSTAT, &req::handle(h)).unwrap();
    assert_eq!((status, u64::from_le_bytes(reply[45..53].try_into().unwrap())), (0, 5));
    assert_eq!(ask(&mut i, 100, wire::READ, &req::read(h, 65 << 20, 0)).unwrap().0, -i64::from(libc::EINVAL), "beyond the read limit");
    assert_eq!(fs::read(t.0.join("root/data/new")).unwrap(), b"hello");
    assert_eq!(i.handles_here(100), 1);
    assert!(ask(&mut i, 200, wire::READ, &req::read(h, 5, 0)).is_none(), "another process's handle is the handler's (EBADF)");
    assert_eq!(ask(&mut i, 100, wire::CLOSE, &req::handle(h)).unwrap().0, 0);
    assert!(ask(&mut i, 100, wire::READ, &req::read(h, 5, 0)).is_none(), "a closed handle is the handler's (EBADF)");
    assert_eq!((i.handles_here(100), i.open_handles()), (0, 0));
    // The kernel's open(2) rules, confined.
    assert_eq!(open(&mut i, 100, "/vol/rel", libc::O_RDONLY | libc::O_NOFOLLOW), Err(-i64::from(libc::ELOOP)));
    assert_eq!(open(&mut i, 100, "/vol/dangling", libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL), Err(-i64::from(libc::EEXIST)));
    assert_eq!(open(&mut i, 100, "/vol/data", libc::O_WRONLY), Err(-i64::from(libc::EISDIR)));
    assert_eq!(open(&mut i, 100, "/vol/out/x", libc::O_WRONLY | libc::O_CREAT), Err(ENOENT), "no creating outside");
    assert!(!t.0.join("outside/x").exists());
    let h = open(&mut i, 100, "/vol/up/data/through-up", libc::O_WRONLY | libc::O_CREAT).unwrap();
    assert!(t.0.join("root/data/through-up").exists(), "a symlink climbing out lands at the root");
    i.close_process(100);
    assert_eq!(i.open_handles(), 0, "a process gone closes its handles");
    assert!(ask(&mut i, 100, wire::CLOSE, &req::handle(h)).is_none());
}

#[test]
// The precise times are the point: what node:fs would send, sub-microsecond digits included.
#[allow(clippy::excessive_precision)]
fn attributes_change_through_handles_here() {
    let t = Tree::new("fattr");
    let mut i = t.instances();
    let h = open(&mut i, 100, "/vol/data/f", libc::O_RDWR | libc::O_CREAT).unwrap();
    // The file moves away from its path: the handle still names it.
    fs::rename(t.0.join("root/data/f"), t.0.join("root/data/moved")).unwrap();
    assert_eq!(ask(&mut i, 100, wire::FCHMOD, &req::fchmod(h, 0o604)).unwrap().0, 0);
    let meta = fs::metadata(t.0.join("root/data/moved")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o604);
    assert_eq!(ask(&mut i, 100, wire::FCHOWN, &req::fchown(h, meta.uid(), meta.gid())).unwrap().0, 0);
    // As node:fs sets them: microseconds kept, the rest dropped.
    assert_eq!(ask(&mut i, 100, wire::FUTIMES, &req::futimes(h, 1_200_000_000_000.0, 1_300_000_000_250.0078125)).unwrap().0, 0);
    let meta = fs::metadata(t.0.join("root/data/moved")).unwrap();
    assert_eq!((meta.atime(), meta.atime_nsec()), (1_200_000_000, 0));
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_300_000_000, 250_007_000));
    // A negative time is now (node:fs's rule); one that is not finite, EINVAL.
    assert_eq!(ask(&mut i, 100, wire::FUTIMES, &req::futimes(h, -1.0, -1.0)).unwrap().0, 0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((fs::metadata(t.0.join("root/data/moved")).unwrap().mtime() - now).abs() <= 5);
    assert_eq!(ask(&mut i, 100, wire::FUTIMES, &req::futimes(h, f64::NAN, 0.0)).unwrap().0, -i64::from(libc::EINVAL));
    assert_eq!(ask(&mut i, 100, wire::FUTIMES, &req::futimes(h, 0.0, f64::INFINITY)).unwrap().0, -i64::from(libc::EINVAL));
    // Short, trailing or foreign requests are the handler's.
    assert!(ask(&mut i, 100, wire::FCHMOD, &req::handle(h)).is_none(), "no mode");
    assert!(ask(&mut i, 100, wire::FCHOWN, &[req::fchown(h, 0, 0), vec![0]].concat()).is_none(), "a byte trails");
    assert!(ask(&mut i, 200, wire::FCHMOD, &req::fchmod(h, 0o600)).is_none(), "another process's handle");
    assert_eq!(fs::metadata(t.0.join("root/data/moved")).unwrap().mode() & 0o7777, 0o604);
    assert_eq!(i.counter(wire::FCHMOD).unwrap().count, 1);
    assert_eq!(ask(&mut i, 100, wire::CLOSE, &req::handle(h)).unwrap().0, 0);
    assert!(ask(&mut i, 100, wire::FCHMOD, &req::fchmod(h, 0o600)).is_none(), "a closed handle is the handler's (EBADF)");
}

#[test]
fn what_open_leaves_to_the_handler() {
    let t = Tree::new("open-pass");
    let mut i = t.instances();
    assert!(ask(&mut i, 100, wire::OPEN, &req::open("/vol/data/f", libc::O_RDONLY | 0x4000_0000, 0)).is_none(), "flags openat2 would refuse");
    assert!(ask(&mut i, 100, wire::OPEN, &req::open("/vol/data/f", libc::O_ACCMODE, 0)).is_none());
    assert!(ask(&mut i, 100, wire::OPEN, &req::open("/vol/data/f", libc::O_RDONLY, 0o10000)).is_none(), "mode bits beyond 07777");
    assert!(ask(&mut i, 100, wire::OPEN, &req::open("/other/f", libc::O_RDONLY, 0)).is_none(), "another instance");
    let mut trailing = req::open("/vol/data/f", libc::O_RDONLY, 0);
    trailing.push(0);
    assert!(ask(&mut i, 100, wire::OPEN, &trailing).is_none(), "bytes trailing");
    assert!(ask(&mut i, 100, wire::CLOSE, &req::handle(5)).is_none(), "the handler's handles");
}

#[test]
fn emfile_per_process_counts_both_sides_and_per_instance() {
    let t = Tree::new("emfile");
    let mut i = Instances::new(Limits { handles_per_process: 3, read_bytes: 1 << 20 }, Arc::new(|| {}));
    i.mount("vol", &t.root(), 4).unwrap();
    let emfile = Err(-i64::from(libc::EMFILE));
    i.set_handles_there(100, 1);
    open(&mut i, 100, "/vol/data/f", libc::O_RDONLY).unwrap();
    open(&mut i, 100, "/vol/data/f", libc::O_RDONLY).unwrap();
    assert_eq!(open(&mut i, 100, "/vol/data/f", libc::O_RDONLY), emfile, "2 here + 1 in JavaScript");
    open(&mut i, 200, "/vol/data/f", libc::O_RDONLY).unwrap();
    open(&mut i, 300, "/vol/data/f", libc::O_RDONLY).unwrap();
    assert_eq!(open(&mut i, 300, "/vol/data/f", libc::O_RDONLY), emfile, "the instance's own limit");
    assert!(i.unmount("vol"));
    assert_eq!((i.open_handles(), i.handles_here(100)), (0, 0), "unmounting closes its handles");
    assert_eq!(i.new_clients(), vec![(1, 100)], "a client is reported once, with the process it first came from");
}

fn umask() -> u32 {
    // SAFETY: umask is process-wide; set it back at once.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    }
}

#[test]
fn remembered_directories_follow_namespace_changes_made_through_the_service() {
    let t = Tree::new("remembered");
    let root = t.0.join("root");
    let mut i = t.instances();
    let old = stat(&mut i, wire::STAT, "/vol/data/f");
    assert_eq!(old.2, 5);
    assert_eq!(i.remembered_dirs(), 1, "'data' is remembered");
    // A rename handed to the handler (tag 7): while it is in flight,
    // nothing remembered is used, whenever the handler makes its call.
    assert_eq!(i.serve(7, 1, 100, 12, &request("/vol/data")), Served::Pass);
    fs::rename(root.join("data"), root.join("old")).unwrap();
    fs::create_dir(root.join("data")).unwrap();
    fs::write(root.join("data/f"), b"new!!!!").unwrap();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f").2, 7, "in flight: resolved whole");
    assert_eq!(i.remembered_dirs(), 0);
    i.answered(7);
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f").2, 7, "answered: resolved again");
    assert_eq!(stat(&mut i, wire::STAT, "/vol/old/f").1, old.1);
    assert_eq!(i.remembered_dirs(), 2);
    // Answers of other requests change nothing; an rmdir, unlink, chmod or
    // chown, or an opcode this side does not know, does.
    i.answered(8);
    assert_eq!(i.remembered_dirs(), 2);
    for (tag, opcode) in [(9, 10), (10, 11), (11, 20), (12, 21), (13, 99)] {
        assert_eq!(i.serve(tag, 1, 100, opcode, &request("/vol/x")), Served::Pass);
        i.answered(tag);
        assert_eq!(i.remembered_dirs(), 0, "opcode {opcode} forgets");
        stat(&mut i, wire::STAT, "/vol/data/f");
    }
    for opcode in [9, 13, 14, 15, 16, 22, 23, 24] {
        assert_eq!(i.serve(20, 1, 100, opcode, &request("/vol/x")), Served::Pass);
        i.answered(20);
        assert_eq!(i.remembered_dirs(), 1, "opcode {opcode} keeps");
    }
    // Opening a file in a new directory, creating, listing: all through remembered directories.
    fs::create_dir(root.join("data/deep")).unwrap();
    let h = open(&mut i, 100, "/vol/data/deep/n", libc::O_RDWR | libc::O_CREAT | libc::O_EXCL).unwrap();
    assert!(root.join("data/deep/n").exists());
    assert_eq!(open(&mut i, 100, "/vol/data/deep/n", libc::O_RDWR | libc::O_CREAT | libc::O_EXCL), Err(-i64::from(libc::EEXIST)));
    assert_eq!(names(&mut i, "/vol/data/deep").unwrap(), [(libc::DT_REG, "n".to_string())]);
    let _ = h;
}

#[test]
fn remembered_directories_never_lead_out_and_see_changes_behind_the_service_within_a_check() {
    let t = Tree::new("behind");
    let root = t.0.join("root");
    let mut i = t.instances();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f").2, 5);
    // Behind the service's back, 'data' becomes a symlink out of the root.
    fs::rename(root.join("data"), root.join("gone")).unwrap();
    symlink("../outside", root.join("data")).unwrap();
    fs::write(t.0.join("outside/f"), b"outside!").unwrap();
    let seen = stat(&mut i, wire::STAT, "/vol/data/f");
    assert_eq!(seen.2, 5, "within one check interval: the directory resolved before");
    std::thread::sleep(ROOT_CHECK);
    i.check_roots();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/data/f").0, ENOENT, "then resolved again, beneath the root");
    assert_eq!(open(&mut i, 100, "/vol/data/f", libc::O_RDONLY), Err(ENOENT));
    assert_eq!(names(&mut i, "/vol/data"), Err(ENOENT));
    // Final symlinks through remembered directories are followed beneath the root.
    symlink("../../outside/secret", root.join("gone/esc")).unwrap();
    symlink("sub", root.join("gone/dir")).unwrap();
    assert_eq!(stat(&mut i, wire::STAT, "/vol/gone/esc").0, ENOENT);
    assert_eq!(stat(&mut i, wire::LSTAT, "/vol/gone/esc").3 & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(open(&mut i, 100, "/vol/gone/esc", libc::O_RDONLY), Err(ENOENT));
    assert_eq!(open(&mut i, 100, "/vol/gone/esc", libc::O_WRONLY | libc::O_CREAT), Err(ENOENT), "its directory is missing beneath the root");
    fs::create_dir(root.join("outside")).unwrap();
    assert!(open(&mut i, 100, "/vol/gone/esc", libc::O_WRONLY | libc::O_CREAT).is_ok(), "O_CREAT through a dangling symlink");
    assert!(root.join("outside/secret").exists(), "created beneath the root");
    assert_eq!(fs::read(t.0.join("outside/secret")).unwrap(), b"secret", "not outside it");
    assert!(open(&mut i, 100, "/vol/gone/dir", libc::O_RDONLY | libc::O_DIRECTORY).is_ok(), "a symlink to a directory with O_DIRECTORY");
    let nofollow = open(&mut i, 100, "/vol/gone/dir", libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW);
    // What the kernel answers for the same open of the host path.
    let host = std::ffi::CString::new(root.join("gone/dir").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(host.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW) };
    assert!(fd < 0);
    assert_eq!(nofollow, Err(-i64::from(errno())), "O_NOFOLLOW on a symlink fails as the kernel's open does");
    assert_eq!(names(&mut i, "/vol/gone/dir").unwrap(), Vec::<(u8, String)>::new(), "a listing through a symlink to a directory");
}

#[test]
fn reads_land_in_the_clients_area_with_any_rest_after_it() {
    let t = Tree::new("in-place");
    let data: Vec<u8> = (0..10_000u32).map(|n| (n * 7 % 251) as u8).collect();
    fs::write(t.0.join("root/data/big"), &data).unwrap();
    let mut i = t.instances();
    let h = open(&mut i, 100, "/vol/data/big", libc::O_RDONLY).unwrap();
    let v = wire::PROTOCOL_VERSION;
    let with_version = |d: &[u8]| [&[v][..], d].concat();
    let mut area = vec![0xEEu8; 4096];

    assert_eq!(read_into(&mut i, h, 100, 10, &mut area), (0, with_version(&data[10..110]), true), "a read that fits");
    assert!(area[101..].iter().all(|&b| b == 0xEE), "nothing written past the reply");
    assert_eq!(read_into(&mut i, h, 6000, 0, &mut area), (0, with_version(&data[..6000]), true), "the area full, the rest after it");
    assert_eq!(read_into(&mut i, h, 6000, 9000, &mut area), (0, with_version(&data[9000..]), true), "a short read at the end");
    assert_eq!(read_into(&mut i, h, 10, 10_000, &mut area), (0, vec![v], true), "at the end: nothing");
    // At the handle's offset (-1): one readv, so the offset moves by all of it.
    assert_eq!(read_into(&mut i, h, 5000, -1, &mut area), (0, with_version(&data[..5000]), true));
    assert_eq!(read_into(&mut i, h, 10, -1, &mut area), (0, with_version(&data[5000..5010]), true), "the offset moved past the rest too");
    assert_eq!(read_into(&mut i, h, 0, 0, &mut area), (0, vec![v], false), "0 bytes: no system call");
    let mut tiny = [0xEEu8; 1];
    assert_eq!(read_into(&mut i, h, 3, 0, &mut tiny), (0, with_version(&data[..3]), false), "an area with no room for data: the usual reply");
    assert_eq!(tiny, [0xEE]);

    let w = open(&mut i, 100, "/vol/data/big", libc::O_WRONLY).unwrap();
    area.fill(0xEE);
    assert_eq!(read_into(&mut i, w, 8, 0, &mut area), (-i64::from(libc::EBADF), vec![], false), "an error: no reply, in place or not");
    assert_eq!(area[0], 0xEE, "the area untouched by a failed read");
}
