//! Node-API glue for @polytropon/libservice-ceph: one `CephClient` per
//! mounted CephFS client. Every operation has an async form (an AsyncTask on
//! libuv's pool: the JS thread never waits for the cluster) and a sync form
//! (on the calling thread, for the I/O service's sync paths). Operations are
//! numbered (`Op` in src/native.ts) and take their arguments positionally,
//! so no object is made per call; a POSIX failure comes back as the number
//! `-errno`, not as an exception. Connecting and loading fail with
//! `CODE: message` reasons that the TS layer turns into `CephError`s.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Buffer, Float64Array, ToNapiValue, TypeName, Uint8ArraySlice, ValueType};
use napi::{sys, Env, Error, Result, Status, Task};
use napi_derive::napi;
use polytropon_cephfs::{Config, Errno, Library, Mount, Stage, Stat, StatFs};

/// The result of an operation, as JS sees it.
pub enum Out {
    /// A count, a descriptor, 0 for done, or `-errno`.
    Num(f64),
    /// Attributes (see `STAT_FIELDS` in src/native.ts) or filesystem statistics.
    Floats(Vec<f64>),
    /// Directory entries (`type byte, name, NUL`...) or the bytes read.
    Bytes(Vec<u8>),
    /// A symlink's target.
    Text(String),
}

impl TypeName for Out {
    fn type_name() -> &'static str {
        "number | Float64Array | Buffer | string"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Out {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        // SAFETY: called by napi with the env of the current call.
        unsafe {
            match val {
                Out::Num(n) => f64::to_napi_value(env, n),
                Out::Floats(v) => Float64Array::to_napi_value(env, Float64Array::new(v)),
                Out::Bytes(v) => Buffer::to_napi_value(env, Buffer::from(v)),
                Out::Text(s) => String::to_napi_value(env, s),
            }
        }
    }
}

/// Nanoseconds as node:fs's milliseconds: seconds * 1e3 + nanoseconds / 1e6,
/// each exact before they add up (`ns as f64 / 1e6` would land off: an f64
/// holds today's times in nanoseconds only to 256 ns).
fn ms(ns: i128) -> f64 {
    let (s, n) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    s as f64 * 1e3 + n as f64 / 1e6
}

fn stat_out(s: Stat) -> Out {
    Out::Floats(vec![
        s.dev as f64,
        s.ino as f64,
        s.mode as f64,
        s.nlink as f64,
        s.uid as f64,
        s.gid as f64,
        s.rdev as f64,
        s.size as f64,
        s.blksize as f64,
        s.blocks as f64,
        ms(s.atime_ns),
        ms(s.mtime_ns),
        ms(s.ctime_ns),
        ms(s.btime_ns),
    ])
}

fn statfs_out(s: StatFs) -> Out {
    Out::Floats(vec![s.bsize as f64, s.blocks as f64, s.bfree as f64, s.bavail as f64, s.files as f64, s.ffree as f64])
}

fn done<T>(r: std::result::Result<T, Errno>, f: impl FnOnce(T) -> Out) -> Out {
    match r {
        Ok(v) => f(v),
        Err(Errno(e)) => Out::Num(-(e as f64)),
    }
}

fn unit(_: ()) -> Out {
    Out::Num(0.0)
}

/// The arguments of one operation.
struct Call {
    op: u32,
    a: String,
    b: String,
    n: [f64; 3],
}

/// The user access(2) checks for.
#[derive(Clone, Copy)]
struct Identity {
    uid: u32,
    gid: u32,
}

/// Milliseconds as nanoseconds, to the microsecond (as libuv sets times for
/// node:fs): `ms * 1e6` in floating point would land a few ns off.
fn ns_of_ms(ms: f64) -> i128 {
    (ms * 1000.0).round() as i128 * 1000
}

fn run(m: &Mount, who: Identity, c: &Call) -> Out {
    let [n0, n1, n2] = c.n;
    let (a, b) = (c.a.as_str(), c.b.as_str());
    let int = |x: f64| x as i32;
    match c.op {
        0 => done(m.stat(a, n0 != 0.0), stat_out),
        1 => done(m.open(a, int(n0), n1 as u32), |fd| Out::Num(fd as f64)),
        2 => done(m.close(int(n0)), unit),
        3 => done(m.fstat(int(n0)), stat_out),
        4 => done(m.readdir(a), |entries| {
            let mut out = Vec::with_capacity(entries.iter().map(|e| e.name.len() + 2).sum());
            for e in entries {
                out.push(e.kind);
                out.extend_from_slice(e.name.as_bytes());
                out.push(0);
            }
            Out::Bytes(out)
        }),
        5 => done(m.mkdir(a, n0 as u32), unit),
        6 => done(m.rmdir(a), unit),
        7 => done(m.unlink(a), unit),
        8 => done(m.rename(a, b, n0 != 0.0), unit),
        9 => done(m.link(a, b), unit),
        10 => done(m.symlink(a, b), unit),
        11 => done(m.readlink(a), Out::Text),
        12 => done(m.truncate(a, n0 as u64), unit),
        13 => done(m.ftruncate(int(n0), n1 as u64), unit),
        14 => done(m.fsync(int(n0), n1 != 0.0), unit),
        15 => done(m.chmod(a, n0 as u32), unit),
        16 => done(m.chown(a, int(n0), int(n1)), unit),
        17 => done(m.utimes(a, ns_of_ms(n0), ns_of_ms(n1)), unit),
        18 => done(m.access(a, n0 as u32, who.uid, who.gid), unit),
        19 => done(m.statfs(a), statfs_out),
        20 => done(m.unmount(), unit),
        21 => done(m.fchmod(int(n0), n1 as u32), unit),
        22 => done(m.fchown(int(n0), int(n1), int(n2)), unit),
        23 => done(m.futimes(int(n0), ns_of_ms(n1), ns_of_ms(n2)), unit),
        _ => Out::Num(-(ENOSYS as f64)),
    }
}

/// Linux's ENOSYS: an operation number this binding does not know.
const ENOSYS: i32 = 38;

/// libcephfs, loaded (from `file`, or its soname) on the first call.
fn load(file: Option<&str>) -> Result<&'static Library> {
    Library::load(file).map_err(|e| Error::new(Status::GenericFailure, format!("ERR_CEPH_LIBRARY: {e}")))
}

/// libcephfs's version, loading it (from `file`, or its soname) on the first call.
#[napi]
pub fn library_version(file: Option<String>) -> Result<String> {
    load(file.as_deref()).map(|l| l.version().to_owned())
}

/// A pending connection; resolves to a `CephClient`.
pub struct Connect {
    config: Config,
    library: Option<String>,
    identity: Identity,
}

impl Task for Connect {
    type Output = Mount;
    type JsValue = CephClient;

    fn compute(&mut self) -> Result<Mount> {
        let lib = load(self.library.as_deref())?;
        Mount::connect(lib, &self.config).map_err(|e| {
            let stage = match &e.stage {
                Stage::Create => "create".to_owned(),
                Stage::ReadConf => "conf".to_owned(),
                Stage::SetOption(name) => format!("option {name}"),
                Stage::SelectFilesystem => "filesystem".to_owned(),
                Stage::Mount => "mount".to_owned(),
                Stage::CreateRoot => "root".to_owned(),
            };
            Error::new(Status::GenericFailure, format!("ERR_CEPH_CONNECT: {} {stage}", e.errno.0))
        })
    }

    fn resolve(&mut self, _env: Env, mount: Mount) -> Result<CephClient> {
        Ok(CephClient { mount: Arc::new(mount), identity: self.identity })
    }
}

/// Connects a client: `options` are `[name, value]` pairs set in order
/// after the conf file. `uid`/`gid` are the user access() checks for.
#[allow(clippy::too_many_arguments)]
#[napi(ts_return_type = "Promise<CephClient>")]
pub fn connect(
    id: Option<String>,
    conf_file: Option<String>,
    options: Vec<Vec<String>>,
    fs_name: Option<String>,
    root: String,
    create_root: bool,
    uid: u32,
    gid: u32,
    library: Option<String>,
) -> AsyncTask<Connect> {
    let options = options.into_iter().filter(|p| p.len() == 2).map(|mut p| (p.remove(0), p.remove(0))).collect();
    AsyncTask::new(Connect { config: Config { id, conf_file, options, fs_name, root, create_root }, library, identity: Identity { uid, gid } })
}

/// One operation off the JS thread.
pub struct Exec {
    mount: Arc<Mount>,
    identity: Identity,
    call: Call,
}

impl Task for Exec {
    type Output = Out;
    type JsValue = Out;

    fn compute(&mut self) -> Result<Out> {
        Ok(run(&self.mount, self.identity, &self.call))
    }

    fn resolve(&mut self, _env: Env, out: Out) -> Result<Out> {
        Ok(out)
    }
}

/// A read or write off the JS thread (its bytes copied, as the JS buffer may move).
pub struct Transfer {
    mount: Arc<Mount>,
    fd: i32,
    data: Vec<u8>,
    position: Option<u64>,
    write: bool,
}

impl Task for Transfer {
    type Output = Out;
    type JsValue = Out;

    fn compute(&mut self) -> Result<Out> {
        Ok(if self.write {
            done(self.mount.write(self.fd, &self.data, self.position), |n| Out::Num(n as f64))
        } else {
            match self.mount.read(self.fd, &mut self.data, self.position) {
                Ok(n) => {
                    let mut data = std::mem::take(&mut self.data);
                    data.truncate(n);
                    Out::Bytes(data)
                }
                Err(Errno(e)) => Out::Num(-(e as f64)),
            }
        })
    }

    fn resolve(&mut self, _env: Env, out: Out) -> Result<Out> {
        Ok(out)
    }
}

fn position(p: f64) -> Option<u64> {
    if p < 0.0 {
        None
    } else {
        Some(p as u64)
    }
}

/// One mounted CephFS client.
#[napi]
pub struct CephClient {
    mount: Arc<Mount>,
    identity: Identity,
}

#[napi]
impl CephClient {
    /// Runs operation `op` off the JS thread.
    #[napi(ts_return_type = "Promise<number | Float64Array | Buffer | string>")]
    pub fn exec(&self, op: u32, a: String, b: String, n0: f64, n1: f64, n2: f64) -> AsyncTask<Exec> {
        AsyncTask::new(Exec { mount: self.mount.clone(), identity: self.identity, call: Call { op, a, b, n: [n0, n1, n2] } })
    }

    /// Runs operation `op` on the calling thread.
    #[napi(ts_return_type = "number | Float64Array | Buffer | string")]
    pub fn exec_sync(&self, op: u32, a: String, b: String, n0: f64, n1: f64, n2: f64) -> Out {
        run(&self.mount, self.identity, &Call { op, a, b, n: [n0, n1, n2] })
    }

    /// Reads up to `length` bytes at `position` (< 0: the file's position) off the JS thread; resolves to the bytes or `-errno`.
    #[napi(ts_return_type = "Promise<number | Buffer>")]
    pub fn read(&self, fd: i32, length: u32, position: f64) -> AsyncTask<Transfer> {
        AsyncTask::new(Transfer { mount: self.mount.clone(), fd, data: vec![0; length as usize], position: self::position(position), write: false })
    }

    /// Reads into `buffer` on the calling thread; the count or `-errno`.
    #[napi]
    pub fn read_sync(&self, fd: i32, mut buffer: Uint8ArraySlice, position: f64) -> f64 {
        // SAFETY: the JS thread is blocked in this call, so nothing else
        // touches the array's bytes while libcephfs fills them.
        let buffer = unsafe { buffer.as_mut() };
        match self.mount.read(fd, buffer, self::position(position)) {
            Ok(n) => n as f64,
            Err(Errno(e)) => -(e as f64),
        }
    }

    /// Writes `data` at `position` (< 0: the file's position; O_APPEND: the end) off the JS thread.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn write(&self, fd: i32, data: &[u8], position: f64) -> AsyncTask<Transfer> {
        AsyncTask::new(Transfer { mount: self.mount.clone(), fd, data: data.to_vec(), position: self::position(position), write: true })
    }

    /// Writes `data` on the calling thread; the count or `-errno`.
    #[napi]
    pub fn write_sync(&self, fd: i32, data: &[u8], position: f64) -> f64 {
        match self.mount.write(fd, data, self::position(position)) {
            Ok(n) => n as f64,
            Err(Errno(e)) => -(e as f64),
        }
    }

    /// A configuration value of this client (`client_cache_size`...), or null.
    #[napi]
    pub fn conf_get(&self, option: String) -> Option<String> {
        self.mount.conf_get(&option).ok()
    }
}
