//! Node-API glue for @polytropon/smo-copy: plain functions (a class method
//! costs ~300 ns per call here, a function ~35 ns, and a 4 KiB copy takes
//! about 300 ns). The TS layer validates and shapes errors; these functions
//! check ranges again, because a wrong range here is memory corruption.

use napi::bindgen_prelude::{BigInt, BufferSlice, TypedArray};
use napi::{Env, Error, Result, Status};
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

/// Bytes `[offset, offset + length)` of a view, as a raw range, or an error
/// if they are not all inside it.
fn range(view: &TypedArray, offset: i64, length: i64, what: &str) -> Result<(*mut u8, usize)> {
    let bytes: &[u8] = &view.arraybuffer;
    let (Ok(offset), Ok(length)) = (usize::try_from(offset), usize::try_from(length)) else {
        return Err(fail("ERR_SMO_OUT_OF_RANGE", format!("{what}: negative offset or length")));
    };
    match offset.checked_add(length) {
        Some(end) if end <= bytes.len() => {
            // SAFETY: offset <= end <= bytes.len(), inside the view.
            Ok((unsafe { bytes.as_ptr().add(offset) }.cast_mut(), length))
        }
        _ => Err(fail(
            "ERR_SMO_OUT_OF_RANGE",
            format!("{what}: bytes {offset}..{offset}+{length} are outside its {} bytes", bytes.len()),
        )),
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
pub fn copy(dst: TypedArray, dst_offset: i64, src: TypedArray, src_offset: i64, length: i64, method: u32) -> Result<()> {
    let (d, len) = range(&dst, dst_offset, length, "destination")?;
    let (s, _) = range(&src, src_offset, length, "source")?;
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
pub fn address_of(view: TypedArray) -> BigInt {
    BigInt::from(view.arraybuffer.as_ptr() as u64)
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
pub fn cma_read(pid: i32, remote_address: BigInt, dst: TypedArray, dst_offset: i64, length: i64) -> Result<()> {
    let (d, len) = range(&dst, dst_offset, length, "destination")?;
    // SAFETY: the range is inside a live view (checked above).
    let local = unsafe { std::slice::from_raw_parts_mut(d, len) };
    polytropon_smo_copy::cma_read(pid, remote(remote_address)?, local).map_err(core_error)
}

/// Writes `src[srcOffset..srcOffset+length]` at `remoteAddress` in process `pid`.
#[napi]
pub fn cma_write(pid: i32, remote_address: BigInt, src: TypedArray, src_offset: i64, length: i64) -> Result<()> {
    let (s, len) = range(&src, src_offset, length, "source")?;
    // SAFETY: the range is inside a live view (checked above).
    let local = unsafe { std::slice::from_raw_parts(s.cast_const(), len) };
    polytropon_smo_copy::cma_write(pid, remote(remote_address)?, local).map_err(core_error)
}

fn os_error(e: std::io::Error, name: &str) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => "ERR_SMO_NOT_FOUND",
        std::io::ErrorKind::AlreadyExists => "ERR_SMO_EXISTS",
        std::io::ErrorKind::InvalidInput => "ERR_SMO_INVALID_ARGUMENT",
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
    into_buffer(env, Segment::create(&name, len).map_err(|e| os_error(e, &name))?)
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

