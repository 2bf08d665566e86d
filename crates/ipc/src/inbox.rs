//! Taken requests packed into one byte buffer for a JavaScript handler: one
//! buffer instead of an object per request, as the JS side builds its
//! objects far more cheaply than Node-API can. Every Node-API glue that
//! serves a channel (the ipc package's, the I/O service's) packs the same way.
//!
//! Each request is a 32-byte little-endian record (index u32, seq u32,
//! opcode u32, length u32, client f64, pid u32, 4 zero bytes) followed by
//! its payload, padded to 8 bytes.

use std::collections::VecDeque;

use crate::{BackDriver, Error, Request};

/// Bytes of a record's head.
pub const RECORD: usize = 32;

/// Moves requests from the front of `held` into `out` while they fit and
/// returns how many it moved; the rest stay in `held` for the next call. An
/// in-place request whose buffer went away meanwhile is dropped. A first
/// request larger than `out` is an error (the buffer must hold the largest
/// request the service accepts).
pub fn pack(back: &BackDriver, held: &mut VecDeque<Request>, out: &mut [u8]) -> Result<u32, Error> {
    let (mut at, mut n) = (0usize, 0u32);
    while let Some(r) = held.front() {
        let len = if r.in_place > 0 { r.in_place } else { r.payload.len() };
        let need = RECORD + len.next_multiple_of(8);
        if at + need > out.len() {
            if n == 0 {
                return Err(Error::InvalidArgument(format!("a request of {len} bytes does not fit the take buffer")));
            }
            break;
        }
        let r = held.pop_front().expect("front exists");
        let (index, seq) = r.token();
        out[at..at + 4].copy_from_slice(&index.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&seq.to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&r.opcode.to_le_bytes());
        out[at + 12..at + 16].copy_from_slice(&(len as u32).to_le_bytes());
        out[at + 16..at + 24].copy_from_slice(&(r.client as f64).to_le_bytes());
        out[at + 24..at + 28].copy_from_slice(&r.pid.to_le_bytes());
        out[at + 28..at + 32].fill(0);
        if r.in_place > 0 {
            // A large request stays in the client's buffer; its area is
            // gone if the client died since the take: drop the request.
            let Some((src, _)) = back.request_area((index, seq)).filter(|(_, size)| len <= *size) else {
                continue;
            };
            // SAFETY: `src` is the request's data area in the mapped
            // channel, at least `len` bytes (checked above); the target
            // range is within `out` (checked by `need`). The client may
            // write its area meanwhile: these are untrusted bytes either way.
            unsafe { std::ptr::copy_nonoverlapping(src, out[at + RECORD..].as_mut_ptr(), len) };
        } else {
            out[at + RECORD..at + RECORD + len].copy_from_slice(&r.payload);
        }
        at += need;
        n += 1;
    }
    Ok(n)
}
