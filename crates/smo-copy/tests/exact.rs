//! Every copy path is byte-exact against a plain copy, and writes nothing
//! outside its destination range.

use polytropon_smo_copy::{copy, copy_raw_with, copy_with, Method, VectorUnit};
use proptest::prelude::*;

/// Deterministic, position-dependent bytes, so a shifted or repeated chunk
/// is caught (a constant fill would hide both).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const GUARD: usize = 192;
const CANARY: u8 = 0xA5;

/// Copies `len` bytes from `src[src_off..]` into a destination at `dst_off`
/// inside a canary-filled buffer with every path, checking the copy and the
/// canaries around it.
fn check_all_paths(len: usize, src_off: usize, dst_off: usize, seed: u64) {
    let src = pattern(src_off + len, seed);
    let want = &src[src_off..];
    type Path = Box<dyn Fn(&mut [u8], &[u8])>;
    let mut paths: Vec<Path> = vec![
        Box::new(|d, s| copy(d, s, Method::Smc)),
        Box::new(|d, s| copy(d, s, Method::Smo)),
        Box::new(|d, s| copy(d, s, Method::Auto)),
    ];
    for unit in VectorUnit::supported() {
        paths.push(Box::new(move |d, s| copy_with(d, s, unit).unwrap()));
    }
    for (i, path) in paths.iter().enumerate() {
        let mut buf = vec![CANARY; GUARD + dst_off + len + GUARD];
        path(&mut buf[GUARD + dst_off..GUARD + dst_off + len], want);
        let copied = &buf[GUARD + dst_off..GUARD + dst_off + len];
        if copied != want {
            let at = copied.iter().zip(want).position(|(a, b)| a != b).unwrap();
            panic!("path {i}: len {len} src_off {src_off} dst_off {dst_off}: first wrong byte at {at}");
        }
        assert!(buf[..GUARD + dst_off].iter().all(|b| *b == CANARY), "path {i}: wrote before the destination");
        assert!(buf[GUARD + dst_off + len..].iter().all(|b| *b == CANARY), "path {i}: wrote past the destination");
    }
}

#[test]
fn every_length_up_to_4096() {
    for len in 0..=4096 {
        // Rotate through alignments so every length meets several of them.
        check_all_paths(len, len % 67, (len * 7) % 64, len as u64);
    }
}

#[test]
fn every_alignment_pair_at_a_few_lengths() {
    for len in [511, 512, 513, 1000, 4096 + 63] {
        for src_off in 0..64 {
            for dst_off in 0..64 {
                check_all_paths(len, src_off, dst_off, (len * 4096 + src_off * 64 + dst_off) as u64);
            }
        }
    }
}

#[test]
fn large_copies_up_to_64_mib() {
    for (len, src_off, dst_off) in [(64 << 20, 0, 0), ((64 << 20) - 1, 3, 61), ((16 << 20) + 4097, 17, 1), (1 << 20, 63, 63)] {
        check_all_paths(len, src_off, dst_off, len as u64);
    }
}

#[test]
fn forcing_an_unsupported_unit_is_an_error_not_a_crash() {
    for unit in VectorUnit::ALL {
        let src = [1u8; 4096];
        let mut dst = [0u8; 4096];
        // SAFETY: two live, disjoint arrays of 4096 bytes.
        let r = unsafe { copy_raw_with(dst.as_mut_ptr(), src.as_ptr(), 4096, unit) };
        if unit.is_supported() {
            r.unwrap();
            assert_eq!(dst, src);
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.code(), "ERR_SMO_UNSUPPORTED");
            assert_eq!(dst, [0u8; 4096], "an unsupported unit must not copy");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random lengths (weighted to small and to a few MiB), offsets and seeds.
    #[test]
    fn random_lengths_and_alignments(
        len in prop_oneof![0usize..2048, 2048usize..300_000, 300_000usize..(8 << 20)],
        src_off in 0usize..4096,
        dst_off in 0usize..4096,
        seed in any::<u64>(),
    ) {
        check_all_paths(len, src_off, dst_off, seed);
    }
}
