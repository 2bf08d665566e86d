//! The part of the wire protocol this crate answers (`@polytropon/ipc`'s
//! protocol.ts, its version 2): requests that carry one path, and the
//! results of stat and readdir. Decoding is as strict as the TypeScript
//! side's; what it refuses goes to the service's JavaScript handler, which
//! answers EBADMSG.

/// Must equal PROTOCOL_VERSION in protocol.ts.
pub const PROTOCOL_VERSION: u8 = 2;
/// Longest path or name, in bytes (MAX_PATH in protocol.ts).
pub const MAX_PATH: usize = 4096;

/// Opcodes answered here (the `Opcode` table of protocol.ts).
pub const OPEN: u32 = 1;
pub const CLOSE: u32 = 2;
pub const READ: u32 = 3;
pub const WRITE: u32 = 4;
pub const STAT: u32 = 5;
pub const LSTAT: u32 = 6;
pub const FSTAT: u32 = 7;
pub const READDIR: u32 = 8;
pub const FTRUNCATE: u32 = 17;
pub const FSYNC: u32 = 18;
pub const FDATASYNC: u32 = 19;
pub const FCHMOD: u32 = 25;
pub const FCHOWN: u32 = 26;
pub const FUTIMES: u32 = 27;

/// Opcodes the JavaScript handler answers that change what paths name
/// (see `changes_namespace`).
pub const RMDIR: u32 = 10;
pub const UNLINK: u32 = 11;
pub const RENAME: u32 = 12;
pub const CHMOD: u32 = 20;
pub const CHOWN: u32 = 21;

/// Largest magnitude of the protocol's `int` (JavaScript's safe integers).
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Reads a request's fields in table order; every method fails (None) on
/// a short message, and [`Fields::end`] on bytes left over.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Starts after the version byte, which must be this side's.
    pub fn new(payload: &'a [u8]) -> Option<Fields<'a>> {
        let (&version, rest) = payload.split_first()?;
        (version == PROTOCOL_VERSION).then_some(Fields { rest })
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }

    /// A signed 64-bit integer within the safe range.
    pub fn int(&mut self) -> Option<i64> {
        let v = i64::from_le_bytes(self.bytes(8)?.try_into().ok()?);
        (v.unsigned_abs() <= MAX_SAFE).then_some(v)
    }

    /// A float (little-endian binary64).
    pub fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }

    /// A path: u32 length, 1..=4096 bytes of UTF-8 without NUL.
    pub fn path(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        if len == 0 || len > MAX_PATH {
            return None;
        }
        let bytes = self.bytes(len)?;
        if bytes.contains(&0) {
            return None;
        }
        std::str::from_utf8(bytes).ok()
    }

    /// Whatever is left (a write's data).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// True when nothing trails.
    pub fn end(&self) -> bool {
        self.rest.is_empty()
    }
}

/// The path of a request whose only field is a path: version byte, u32
/// length, 1..=4096 bytes of UTF-8 without NUL, nothing after.
pub fn path_request(payload: &[u8]) -> Option<&str> {
    let mut f = Fields::new(payload)?;
    let path = f.path()?;
    f.end().then_some(path)
}

/// A result of one `int` field (open's handle, write's count).
pub fn int_result(v: u64, out: &mut Vec<u8>) {
    out.clear();
    out.push(PROTOCOL_VERSION);
    int(out, v);
}

/// A file's attributes, as node:fs's Stats has them (and the protocol sends them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attributes {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_ms: f64,
    pub mtime_ms: f64,
    pub ctime_ms: f64,
    pub birthtime_ms: f64,
}

fn int(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&(v as i64).to_le_bytes());
}

/// Encodes a stat result into `out` (cleared first). False, leaving `out`
/// unspecified, when a value is beyond the protocol's integers: the
/// JavaScript handler answers those (as EIO, the same as it would).
pub fn stat_result(a: &Attributes, out: &mut Vec<u8>) -> bool {
    if [a.dev, a.ino, a.nlink, a.rdev, a.size, a.blksize, a.blocks].iter().any(|&v| v > MAX_SAFE) {
        return false;
    }
    out.clear();
    out.push(PROTOCOL_VERSION);
    int(out, a.dev);
    int(out, a.ino);
    out.extend_from_slice(&a.mode.to_le_bytes());
    int(out, a.nlink);
    out.extend_from_slice(&a.uid.to_le_bytes());
    out.extend_from_slice(&a.gid.to_le_bytes());
    int(out, a.rdev);
    int(out, a.size);
    int(out, a.blksize);
    int(out, a.blocks);
    for t in [a.atime_ms, a.mtime_ms, a.ctime_ms, a.birthtime_ms] {
        out.extend_from_slice(&t.to_le_bytes());
    }
    true
}

/// Encodes a readdir result: a u32 count, then per entry its type byte and
/// its name (u32 length + bytes). False when a name is not UTF-8 (node:fs
/// would show it lossily; the JavaScript handler answers those).
pub fn entries_result(entries: &[(u8, Vec<u8>)], out: &mut Vec<u8>) -> bool {
    out.clear();
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (kind, name) in entries {
        if name.is_empty() || name.len() > MAX_PATH || std::str::from_utf8(name).is_err() {
            return false;
        }
        out.push(*kind);
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &[u8]) -> Vec<u8> {
        let mut v = vec![PROTOCOL_VERSION];
        v.extend_from_slice(&(path.len() as u32).to_le_bytes());
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn a_path_request_decodes_strictly() {
        assert_eq!(path_request(&request(b"/a/b")), Some("/a/b"));
        assert_eq!(path_request(&request(b"")), None, "empty path");
        assert_eq!(path_request(&request(b"/a\0b")), None, "NUL");
        assert_eq!(path_request(&request(&[b'/', 0xff])), None, "not UTF-8");
        assert_eq!(path_request(&request(&vec![b'a'; MAX_PATH + 1])), None, "too long");
        let mut trailing = request(b"/a");
        trailing.push(0);
        assert_eq!(path_request(&trailing), None, "trailing bytes");
        let mut v2 = request(b"/a");
        v2[0] = PROTOCOL_VERSION - 1;
        assert_eq!(path_request(&v2), None, "other version");
        assert_eq!(path_request(&request(b"/a")[..4]), None, "short");
        assert_eq!(path_request(&[]), None);
    }

    #[test]
    fn fields_read_in_order_and_refuse_what_is_off() {
        let mut v = vec![PROTOCOL_VERSION];
        v.extend_from_slice(&7i64.to_le_bytes());
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&(-1i64).to_le_bytes());
        v.extend_from_slice(b"data");
        let mut f = Fields::new(&v).unwrap();
        assert_eq!((f.int(), f.u32(), f.int(), f.rest(), f.end()), (Some(7), Some(9), Some(-1), &b"data"[..], true));
        let mut big = vec![PROTOCOL_VERSION];
        big.extend_from_slice(&(1i64 << 53).to_le_bytes());
        assert_eq!(Fields::new(&big).unwrap().int(), None, "beyond the safe range");
        assert_eq!(Fields::new(&v[..5]).unwrap().int(), None, "short");
        assert!(Fields::new(&[PROTOCOL_VERSION + 1]).is_none(), "another version");
        let mut floats = vec![PROTOCOL_VERSION];
        floats.extend_from_slice(&1.5f64.to_le_bytes());
        floats.extend_from_slice(&[0; 7]);
        let mut f = Fields::new(&floats).unwrap();
        assert_eq!((f.f64(), f.f64()), (Some(1.5), None), "a float, then a short one");
    }

    #[test]
    fn stat_results_have_the_tables_layout() {
        let a = Attributes { dev: 1, ino: 2, mode: 0o100644, nlink: 3, uid: 4, gid: 5, rdev: 6, size: 7, blksize: 8, blocks: 9, atime_ms: 1.5, mtime_ms: 2.5, ctime_ms: 3.5, birthtime_ms: 4.5 };
        let mut out = Vec::new();
        assert!(stat_result(&a, &mut out));
        // version + 7 ints + 3 u32 + 4 f64
        assert_eq!(out.len(), 1 + 7 * 8 + 3 * 4 + 4 * 8);
        assert_eq!(&out[17..21], &0o100644u32.to_le_bytes());
        assert_eq!(&out[out.len() - 8..], &4.5f64.to_le_bytes());
        assert!(!stat_result(&Attributes { ino: 1 << 60, ..a }, &mut out), "beyond the safe range");
    }

    #[test]
    fn entries_refuse_names_that_are_not_utf8() {
        let mut out = Vec::new();
        assert!(entries_result(&[(8, b"a".to_vec()), (4, b"dir".to_vec())], &mut out));
        assert_eq!(out, [&[PROTOCOL_VERSION, 2, 0, 0, 0, 8, 1, 0, 0, 0, b'a', 4, 3, 0, 0, 0][..], b"dir"].concat());
        assert!(!entries_result(&[(8, vec![0xff])], &mut out));
    }

    proptest::proptest! {
        #[test]
        fn hostile_payloads_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = path_request(&bytes);
        }
    }
}
