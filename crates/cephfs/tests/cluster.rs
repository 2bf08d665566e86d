//! Against a real cluster: `scripts/ceph-dev-cluster.sh start` and
//! CEPH_CONF naming its ceph.conf. Without one, each test says so and
//! returns, unless POLYTROPON_CEPH_REQUIRED=1 (CI with a started cluster),
//! where a missing cluster fails.
use polytropon_cephfs::{Config, Errno, Library, Mount, Stage};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cluster_conf() -> Option<String> {
    let conf = std::env::var("CEPH_CONF").ok().filter(|c| std::path::Path::new(c).exists());
    if conf.is_none() {
        assert!(std::env::var("POLYTROPON_CEPH_REQUIRED").as_deref() != Ok("1"), "POLYTROPON_CEPH_REQUIRED=1 but CEPH_CONF names no ceph.conf");
        eprintln!("NOTICE: no Ceph cluster (CEPH_CONF unset): test not run");
    }
    conf
}

fn mount(conf: &str, root: &str) -> Mount {
    let lib = Library::load(None).expect("libcephfs");
    let config = Config { id: Some("admin".into()), conf_file: Some(conf.into()), root: root.into(), create_root: true, ..Config::default() };
    Mount::connect(lib, &config).expect("mount")
}

fn unique(name: &str) -> String {
    format!("/rust-{name}-{}-{:x}", std::process::id(), Instant::now().elapsed().as_nanos() ^ (std::ptr::addr_of!(name) as u128))
}

#[test]
fn files_directories_and_links_round_trip() {
    let Some(conf) = cluster_conf() else { return };
    let root = unique("basic");
    let m = mount(&conf, &root);
    assert_eq!(m.readdir("/").unwrap(), vec![]);
    m.mkdir("/d", 0o755).unwrap();
    let fd = m.open("/d/f", libc::O_CREAT | libc::O_RDWR | libc::O_EXCL, 0o644).unwrap();
    assert_eq!(m.write(fd, b"hello ceph", None).unwrap(), 10);
    assert_eq!(m.write(fd, b"C", Some(6)).unwrap(), 1);
    let mut buf = [0u8; 64];
    let n = m.read(fd, &mut buf, Some(0)).unwrap();
    assert_eq!(&buf[..n], b"hello Ceph");
    assert_eq!(m.fstat(fd).unwrap().size, 10);
    m.close(fd).unwrap();
    assert_eq!(m.close(fd), Err(Errno(libc::EBADF)));

    let st = m.stat("/d/f", true).unwrap();
    assert_eq!(st.mode & libc::S_IFMT, libc::S_IFREG);
    // dev is the filesystem's id: small, the same for every file, safe in a JS number.
    assert!(st.dev < 1 << 32, "dev {}", st.dev);
    assert_eq!(m.stat("/", true).unwrap().dev, st.dev);
    assert_eq!(st.size, 10);
    m.symlink("d/f", "/l").unwrap();
    assert_eq!(m.readlink("/l").unwrap(), "d/f");
    assert_eq!(m.stat("/l", false).unwrap().mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(m.stat("/l", true).unwrap().ino, st.ino);
    m.link("/d/f", "/hard").unwrap();
    assert_eq!(m.stat("/hard", true).unwrap().nlink, 2);
    m.rename("/hard", "/d/g", false).unwrap();
    // link(2) links a symlink itself, dangling or not.
    m.symlink("nowhere", "/dangling").unwrap();
    m.link("/dangling", "/dangling2").unwrap();
    assert_eq!(m.readlink("/dangling2").unwrap(), "nowhere");
    m.unlink("/dangling").unwrap();
    m.unlink("/dangling2").unwrap();
    let mut names: Vec<_> = m.readdir("/d").unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
    names.sort();
    assert_eq!(names, vec![("f".to_string(), libc::DT_REG), ("g".to_string(), libc::DT_REG)]);
    m.truncate("/d/g", 3).unwrap();
    assert_eq!(m.stat("/d/f", true).unwrap().size, 3, "a hard link shares the inode");
    m.chmod("/d/f", 0o600).unwrap();
    assert_eq!(m.stat("/d/f", true).unwrap().mode & 0o7777, 0o600);
    m.utimes("/d/f", 1_000_000_000_123_000_000, 2_000_000_000_456_000_000).unwrap();
    let st = m.stat("/d/f", true).unwrap();
    assert_eq!((st.atime_ns, st.mtime_ns), (1_000_000_000_123_000_000, 2_000_000_000_456_000_000));
    assert!(m.statfs("/").unwrap().blocks > 0);

    assert_eq!(m.stat("/missing", true).unwrap_err(), Errno(libc::ENOENT));
    assert_eq!(m.mkdir("/d", 0o755), Err(Errno(libc::EEXIST)));
    assert_eq!(m.rmdir("/d"), Err(Errno(libc::ENOTEMPTY)));
    assert_eq!(m.unlink("/d"), Err(Errno(libc::EISDIR)));
    assert_eq!(m.open("/d/f/x", libc::O_RDONLY, 0), Err(Errno(libc::ENOTDIR)));
    assert_eq!(m.stat("/a\0b", true).unwrap_err(), Errno(libc::EINVAL));
    // The destination's directory is looked up before the source itself.
    m.symlink("loop", "/loop").unwrap();
    assert_eq!(m.rename("/missing", "/loop/x", false), Err(Errno(libc::ELOOP)));
    assert_eq!(m.rename("/missing", "/loop/x", true), Err(Errno(libc::ENOENT)));
    m.unlink("/loop").unwrap();
    // RENAME_NOREPLACE refuses a destination that exists, even the source itself;
    // a rename onto an ancestor of the source is ENOTEMPTY, whatever the types.
    assert_eq!(m.rename("/d/f", "/d/f", true), Err(Errno(libc::EEXIST)));
    assert_eq!(m.rename("/d/f", "/d/f", false), Ok(()));
    assert_eq!(m.rename("/d/f", "/d", false), Err(Errno(libc::ENOTEMPTY)));
    // link(2): the new name's directory is looked up before a directory source is refused.
    assert_eq!(m.link("/d", "/missing/x"), Err(Errno(libc::ENOENT)));
    assert_eq!(m.link("/d", "/e"), Err(Errno(libc::EPERM)));

    for p in ["/d/f", "/d/g", "/l"] {
        m.unlink(p).unwrap();
    }
    m.rmdir("/d").unwrap();
    drop(m);
    let top = mount(&conf, "/");
    top.rmdir(&root).unwrap();
}

#[test]
fn the_mount_root_confines_paths() {
    let Some(conf) = cluster_conf() else { return };
    let root = unique("confine");
    let outside = format!("{root}-outside");
    let top = mount(&conf, "/");
    top.mkdir(&outside, 0o755).unwrap();
    let m = mount(&conf, &root);
    m.mkdir("/inside", 0o755).unwrap();
    // '..' at the root stays at the root; an absolute symlink resolves from it.
    let mut names: Vec<_> = m.readdir("/..").unwrap().into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, vec!["inside"]);
    m.symlink("/inside", "/abs").unwrap();
    assert_eq!(m.stat("/abs", true).unwrap().ino, m.stat("/inside", true).unwrap().ino);
    let escape = format!("../..{outside}");
    m.symlink(&escape, "/up").unwrap();
    assert_eq!(m.stat("/up", true).unwrap_err(), Errno(libc::ENOENT));
    m.unlink("/abs").unwrap();
    m.unlink("/up").unwrap();
    m.rmdir("/inside").unwrap();
    drop(m);
    top.rmdir(&root).unwrap();
    top.rmdir(&outside).unwrap();
}

#[test]
fn many_threads_share_one_client() {
    let Some(conf) = cluster_conf() else { return };
    let root = unique("threads");
    let m = Arc::new(mount(&conf, &root));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                m.mkdir(&format!("/t{t}"), 0o755).unwrap();
                for i in 0..60 {
                    let p = format!("/t{t}/f{i}");
                    let data = format!("thread {t} file {i}").repeat(i + 1);
                    let fd = m.open(&p, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644).unwrap();
                    assert_eq!(m.write(fd, data.as_bytes(), Some(0)).unwrap(), data.len());
                    m.close(fd).unwrap();
                    let fd = m.open(&p, libc::O_RDONLY, 0).unwrap();
                    let mut buf = vec![0u8; data.len() + 10];
                    let n = m.read(fd, &mut buf, Some(0)).unwrap();
                    m.close(fd).unwrap();
                    assert_eq!(&buf[..n], data.as_bytes(), "{p}");
                    if i % 2 == 0 {
                        m.unlink(&p).unwrap();
                    }
                }
                let mut left = m.readdir(&format!("/t{t}")).unwrap().len();
                assert_eq!(left, 30);
                for i in (1..60).step_by(2) {
                    m.unlink(&format!("/t{t}/f{i}")).unwrap();
                    left -= 1;
                }
                assert_eq!(left, 0);
                m.rmdir(&format!("/t{t}")).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(m.readdir("/").unwrap().is_empty());
    drop(m);
    mount(&conf, "/").rmdir(&root).unwrap();
}

#[test]
fn unmount_waits_for_calls_and_later_calls_fail_with_enotconn() {
    let Some(conf) = cluster_conf() else { return };
    let root = unique("unmount");
    let m = Arc::new(mount(&conf, &root));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || loop {
                match m.stat("/", true) {
                    Ok(_) => {}
                    Err(e) => break e,
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    m.unmount().unwrap();
    for w in workers {
        assert_eq!(w.join().unwrap(), Errno(libc::ENOTCONN));
    }
    assert_eq!(m.open("/f", libc::O_CREAT | libc::O_WRONLY, 0o644), Err(Errno(libc::ENOTCONN)));
    m.unmount().unwrap();
    mount(&conf, "/").rmdir(&root).unwrap();
}

#[test]
fn connecting_fails_cleanly() {
    let Some(conf) = cluster_conf() else { return };
    let lib = Library::load(None).unwrap();
    let base = Config { id: Some("admin".into()), conf_file: Some(conf.clone()), root: "/".into(), ..Config::default() };
    // A root that does not exist, without create_root.
    let e = Mount::connect(lib, &Config { root: "/no/such/dir".into(), ..base.clone() }).err().unwrap();
    assert_eq!((e.stage, e.errno), (Stage::Mount, Errno(libc::ENOENT)));
    // An option libcephfs does not know.
    let e = Mount::connect(lib, &Config { options: vec![("no_such_option".into(), "1".into())], ..base.clone() }).err().unwrap();
    assert_eq!(e.stage, Stage::SetOption("no_such_option".into()));
    // A filesystem the cluster does not have.
    let e = Mount::connect(lib, &Config { fs_name: Some("nofs".into()), ..base.clone() }).err().unwrap();
    assert!(matches!(e.stage, Stage::Mount | Stage::SelectFilesystem), "{e}");
    // Monitors that do not answer: the mount timeout, not a hang.
    let t = Instant::now();
    let e = Mount::connect(
        lib,
        &Config {
            conf_file: None,
            options: vec![("mon_host".into(), "127.0.0.1:9".into()), ("client_mount_timeout".into(), "2".into()), ("keyring".into(), "/dev/null".into())],
            ..base
        },
    )
    .err()
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(30), "took {:?}", t.elapsed());
    assert_eq!(e.stage, Stage::Mount, "{e}");
}
