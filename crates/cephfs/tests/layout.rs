//! `struct ceph_statx` is declared by hand in Rust; this checks its layout
//! against the installed header by compiling a probe with the C compiler.
//! Without the header (no libcephfs-dev) there is nothing to check against.
use polytropon_cephfs::RawStatx;
use std::mem::{offset_of, size_of};
use std::process::Command;

#[test]
fn ceph_statx_matches_the_header() {
    let header = "/usr/include/cephfs/ceph_ll_client.h";
    if !std::path::Path::new(header).exists() {
        eprintln!("NOTICE: {header} is not installed (libcephfs-dev); layout not checked");
        return;
    }
    let dir = std::env::temp_dir().join(format!("cephfs-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let fields = ["stx_mask", "stx_blksize", "stx_nlink", "stx_uid", "stx_gid", "stx_mode", "stx_ino", "stx_size", "stx_blocks", "stx_dev", "stx_rdev", "stx_atime", "stx_ctime", "stx_mtime", "stx_btime", "stx_version"];
    let mut c = String::from("#define _FILE_OFFSET_BITS 64\n#include <stddef.h>\n#include <stdio.h>\n#include <sys/types.h>\n#include <time.h>\n#include <cephfs/ceph_ll_client.h>\nint main(void) {\n printf(\"size %zu\\n\", sizeof(struct ceph_statx));\n");
    for f in fields {
        c += &format!(" printf(\"{f} %zu\\n\", offsetof(struct ceph_statx, {f}));\n");
    }
    c += " return 0;\n}\n";
    std::fs::write(&src, c).unwrap();
    let exe = dir.join("probe");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc).arg("-o").arg(&exe).arg(&src).status().expect("a C compiler");
    assert!(status.success(), "the probe did not compile");
    let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let rust = [
        ("size", size_of::<RawStatx>()),
        ("stx_mask", offset_of!(RawStatx, stx_mask)),
        ("stx_blksize", offset_of!(RawStatx, stx_blksize)),
        ("stx_nlink", offset_of!(RawStatx, stx_nlink)),
        ("stx_uid", offset_of!(RawStatx, stx_uid)),
        ("stx_gid", offset_of!(RawStatx, stx_gid)),
        ("stx_mode", offset_of!(RawStatx, stx_mode)),
        ("stx_ino", offset_of!(RawStatx, stx_ino)),
        ("stx_size", offset_of!(RawStatx, stx_size)),
        ("stx_blocks", offset_of!(RawStatx, stx_blocks)),
        ("stx_dev", offset_of!(RawStatx, stx_dev)),
        ("stx_rdev", offset_of!(RawStatx, stx_rdev)),
        ("stx_atime", offset_of!(RawStatx, stx_atime)),
        ("stx_ctime", offset_of!(RawStatx, stx_ctime)),
        ("stx_mtime", offset_of!(RawStatx, stx_mtime)),
        ("stx_btime", offset_of!(RawStatx, stx_btime)),
        ("stx_version", offset_of!(RawStatx, stx_version)),
    ];
    for (name, value) in rust {
        let line = out.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name} missing in {out}"));
        let c_value: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(value, c_value, "{name}: Rust {value}, C {c_value}");
    }
}
