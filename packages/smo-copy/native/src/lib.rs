//! Node-API glue for @polytropon/smo-copy: plain functions (a class method
//! costs ~300 ns per call here, a function ~35 ns, and a 4 KiB copy takes
//! about 300 ns). The TS layer validates and shapes errors; these functions
//! check ranges again, because a wrong range here is memory corruption.

use napi::bindgen_prelude::{BigInt, BufferSlice, Unknown};
use napi::{sys, Env, Error, JsValue, Result, Status};
use napi_derive::napi;
use polytropon_shm::Segment;
use polytropon_smo_copy::{copy_raw, copy_raw_with, overlaps, Method, VectorUnit};

fn fail(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

fn core_error(e: polytropon_smo_copy::Error) -> Error {
    match &e {
        // The TS layer reads errno and syscall back out of this prefix.
        polytropon_smo_copy::Error::Cma { syscall, errno, .. } => {
            Error::new(Status::GenericFailure, format!("{} errno={errno} syscall={syscall}: {e}", e.code()))
        }
        polytropon_smo_copy::Error::Unsupported(_) => fail(e.code(), e),
    }
}

/// The bytes of a Uint8Array argument as a raw range. Read straight from
/// Node-API rather than through a `&[u8]`: the copies write through this
/// pointer, which a pointer derived from a shared reference must not do.
/// The TS layer passes every view as a Uint8Array over exactly its bytes,
/// so the element count is the byte count.
fn view_bytes(env: &Env, view: &Unknown, what: &str) -> Result<(*mut u8, usize)> {
    let (mut kind, mut len, mut data, mut offset) = (0, 0usize, std::ptr::null_mut(), 0usize);
    // SAFETY: a valid env and value from this call; the out-parameters are
    // locals, and the arraybuffer one is allowed to be null.
    let status = unsafe {
        sys::napi_get_typedarray_info(env.raw(), view.raw(), &mut kind, &mut len, &mut data, std::ptr::null_mut(), &mut offset)
    };
    if status != sys::Status::napi_ok || kind != sys::TypedarrayType::uint8_array {
        return Err(fail("ERR_SMO_INVALID_ARGUMENT", format!("{what} must reach the native layer as a Uint8Array")));
    }
    // A detached or empty view reports no data: zero usable bytes.
    Ok(if data.is_null() { (std::ptr::NonNull::dangling().as_ptr(), 0) } else { (data.cast(), len) })
}

/// Bytes `[offset, offset + length)` of a view, as a raw range, or an error
/// if they are not all inside it.
fn range(env: &Env, view: &Unknown, offset: i64, length: i64, what: &str) -> Result<(*mut u8, usize)> {
    let (base, size) = view_bytes(env, view, what)?;
    let (Ok(offset), Ok(length)) = (usize::try_from(offset), usize::try_from(length)) else {
        return Err(fail("ERR_SMO_OUT_OF_RANGE", format!("{what}: negative offset or length")));
    };
    match offset.checked_add(length) {
        // SAFETY: offset <= end <= size, inside the view.
        Some(end) if end <= size => Ok((unsafe { base.add(offset) }, length)),
        _ => Err(fail("ERR_SMO_OUT_OF_RANGE", format!("{what}: bytes {offset}..{offset}+{length} are outside its {size} bytes"))),
    }
}

/// Method codes, as the TS layer sends them.
const AUTO: u32 = 0;
const SMO: u32 = 1;
const SMC: u32 = 2;
/// SMO on a forced unit: FORCED + index in `VectorUnit::ALL`.
const FORCED: u32 = 16;

/// Copies `length` bytes from `src[srcOffset..]` to `dst[dstOffset..]`.
#[napi]
pub fn copy(env: Env, dst: Unknown, dst_offset: i64, src: Unknown, src_offset: i64, length: i64, method: u32) -> Result<()> {
    let (d, len) = range(&env, &dst, dst_offset, length, "destination")?;
    let (s, _) = range(&env, &src, src_offset, length, "source")?;
    if overlaps(d as usize, len, s as usize, len) {
        return Err(fail("ERR_SMO_OVERLAP", "source and destination ranges overlap (use Buffer.copy or copyWithin for moves inside one buffer)"));
    }
    // SAFETY: both ranges are inside live views (checked above) and disjoint;
    // the views stay alive for the call (they are arguments of it).
    unsafe {
        match method {
            AUTO => copy_raw(d, s, len, Method::Auto),
            SMO => copy_raw(d, s, len, Method::Smo),
            SMC => copy_raw(d, s, len, Method::Smc),
            m => {
                let unit = m
                    .checked_sub(FORCED)
                    .and_then(|i| VectorUnit::ALL.get(i as usize).copied())
                    .ok_or_else(|| fail("ERR_SMO_INVALID_ARGUMENT", format!("unknown method code {m}")))?;
                copy_raw_with(d, s, len, unit).map_err(core_error)?;
            }
        }
    }
    Ok(())
}

/// The SMO vector units this CPU supports, narrowest first.
#[napi]
pub fn supported_units() -> Vec<String> {
    VectorUnit::supported().into_iter().map(|u| u.name().to_string()).collect()
}

/// Every unit the package knows, in the order of the forced-method codes.
#[napi]
pub fn all_units() -> Vec<String> {
    VectorUnit::ALL.into_iter().map(|u| u.name().to_string()).collect()
}

/// The unit `smo` and `auto` use.
#[napi]
pub fn best_unit() -> String {
    VectorUnit::best().name().to_string()
}

/// The smallest size `auto` streams.
#[napi]
pub fn auto_streaming_min() -> u32 {
    polytropon_smo_copy::AUTO_STREAMING_MIN as u32
}

/// Address of a view's first byte in this process, for a peer's CMA calls.
#[napi]
pub fn address_of(env: Env, view: Unknown) -> Result<BigInt> {
    Ok(BigInt::from(view_bytes(&env, &view, "view")?.0 as u64))
}

fn remote(address: BigInt) -> Result<usize> {
    let (negative, value, lossless) = address.get_u64();
    if negative || !lossless {
        return Err(fail("ERR_SMO_INVALID_ARGUMENT", "remoteAddress must be a non-negative 64-bit bigint"));
    }
    usize::try_from(value).map_err(|_| fail("ERR_SMO_INVALID_ARGUMENT", "remoteAddress does not fit this platform"))
}

/// Reads `length` bytes at `remoteAddress` in process `pid` into `dst[dstOffset..]`.
#[napi]
pub fn cma_read(env: Env, pid: i32, remote_address: BigInt, dst: Unknown, dst_offset: i64, length: i64) -> Result<()> {
    let (d, len) = range(&env, &dst, dst_offset, length, "destination")?;
    // SAFETY: the range is inside a live view (checked above), and no other
    // reference to those bytes exists during the call.
    let local = unsafe { std::slice::from_raw_parts_mut(d, len) };
    polytropon_smo_copy::cma_read(pid, remote(remote_address)?, local).map_err(core_error)
}

/// Writes `src[srcOffset..srcOffset+length]` at `remoteAddress` in process `pid`.
#[napi]
pub fn cma_write(env: Env, pid: i32, remote_address: BigInt, src: Unknown, src_offset: i64, length: i64) -> Result<()> {
    let (s, len) = range(&env, &src, src_offset, length, "source")?;
    // SAFETY: the range is inside a live view (checked above).
    let local = unsafe { std::slice::from_raw_parts(s.cast_const(), len) };
    polytropon_smo_copy::cma_write(pid, remote(remote_address)?, local).map_err(core_error)
}

fn os_error(e: std::io::Error, name: &str) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => "ERR_SMO_NOT_FOUND",
        std::io::ErrorKind::AlreadyExists => "ERR_SMO_EXISTS",
        std::io::ErrorKind::InvalidInput => "ERR_SMO_INVALID_ARGUMENT",
        std::io::ErrorKind::PermissionDenied => "ERR_SMO_ACCESS_DENIED",
        _ => "ERR_SMO_IO",
    };
    fail(code, format!("shared buffer {name:?}: {e}"))
}

/// Hands a mapped segment to JS as a Buffer over its memory; the segment is
/// unmapped when the Buffer is collected.
fn into_buffer(env: &Env, segment: Segment) -> Result<BufferSlice<'_>> {
    let (ptr, len) = (segment.as_ptr(), segment.len());
    // SAFETY: ptr/len is the segment's whole mapping, which lives until the
    // finalizer drops `segment`, after the Buffer is unreachable.
    let buffer = unsafe { BufferSlice::from_external(env, ptr, len, segment, |_, segment| drop(segment)) }?;
    if buffer.as_ptr() != ptr.cast_const() {
        // The runtime refused external memory and copied it: that Buffer
        // would not be shared with anyone.
        return Err(fail("ERR_SMO_UNSUPPORTED", "this JavaScript runtime does not allow external buffers"));
    }
    Ok(buffer)
}

/// Creates a named shared-memory segment (mode 0600, exclusive) of `size`
/// bytes, zero-filled, as a Buffer.
#[napi]
pub fn create_shared(env: &Env, name: String, size: i64) -> Result<BufferSlice<'_>> {
    let len = usize::try_from(size).map_err(|_| fail("ERR_SMO_INVALID_ARGUMENT", "size must be positive"))?;
    let segment = Segment::create(&name, len).map_err(|e| os_error(e, &name))?;
    into_buffer(env, segment).inspect_err(|_| {
        // Nobody can use a segment whose Buffer was refused; free its name
        // so that a retry is not told it exists.
        let _ = Segment::unlink(&name);
    })
}

/// Maps an existing named segment, whole, as a Buffer.
#[napi]
pub fn open_shared(env: &Env, name: String) -> Result<BufferSlice<'_>> {
    into_buffer(env, Segment::open(&name).map_err(|e| os_error(e, &name))?)
}

/// Removes a segment's name; mappings stay valid until collected.
#[napi]
pub fn unlink_shared(name: String) -> Result<()> {
    Segment::unlink(&name).map_err(|e| os_error(e, &name))
}

