//! The channel end to end: many client threads and processes against one
//! service, fragments, hostile input, and the death of either side.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use polytropon_ipc::{BackDriver, BackOptions, FrontDriver, FrontOptions, Geometry};

fn unique(tag: &str) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    format!("ipc-test-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The echo service's answer: the payload reversed, status = its length
/// plus the opcode, so a reply matched to the wrong request shows.
fn answer(opcode: u32, payload: &[u8]) -> (i64, Vec<u8>) {
    let mut r = payload.to_vec();
    r.reverse();
    (payload.len() as i64 + i64::from(opcode), r)
}

struct Service {
    stop: Arc<AtomicBool>,
    /// The service thread's pthread id (for signals).
    pthread: usize,
    thread: Option<std::thread::JoinHandle<(BackDriver, Vec<u64>)>>,
}

impl Service {
    /// Runs an echo service on a thread; `hold` delays every completion.
    fn start(name: &str, geometry: Geometry, hold: Duration) -> Service {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (name, stop2) = (name.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut back = BackDriver::create(&name, BackOptions { geometry, max_request: 8 << 20, copy_limit: 16 << 10 }).unwrap();
            // SAFETY: the calling thread's own id.
            tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
            let mut gone = vec![];
            let mut last_reap = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                for r in back.take(64, Duration::from_micros(50), Duration::from_millis(5)) {
                    std::thread::sleep(hold);
                    if r.in_place > 0 {
                        // Large: answered in the client's buffer, no copy.
                        let (at, _) = back.request_area(r.token()).unwrap();
                        // SAFETY: the area is the in-flight request's, in_place bytes long.
                        let bytes = unsafe { std::slice::from_raw_parts_mut(at, r.in_place) };
                        bytes.reverse();
                        back.complete_in_place(r.token(), r.in_place as i64 + i64::from(r.opcode), r.in_place);
                    } else {
                        let (status, data) = answer(r.opcode, &r.payload);
                        back.complete(r.token(), status, &data);
                    }
                }
                if last_reap.elapsed() > Duration::from_millis(20) {
                    gone.extend(back.reap());
                    last_reap = Instant::now();
                }
            }
            (back, gone)
        });
        let pthread = rx.recv().unwrap();
        Service { stop, pthread, thread: Some(thread) }
    }

    fn stop(mut self) -> (BackDriver, Vec<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn geometry(buffers: u32, buffer_size: u32) -> Geometry {
    Geometry { queue_count: 2, queue_capacity: 256, buffer_count: buffers, buffer_size }
}

fn check_call(front: &mut FrontDriver, opcode: u32, payload: &[u8]) {
    let mut reply = vec![];
    let status = front.call(opcode, payload, &mut reply).unwrap();
    let (want_status, want) = answer(opcode, payload);
    assert_eq!(status, want_status, "status for opcode {opcode}, {} bytes", payload.len());
    assert!(reply == want, "reply for opcode {opcode}, {} bytes, does not match", payload.len());
}

#[test]
fn many_threads_each_get_their_own_replies() {
    let name = unique("threads");
    let service = Service::start(&name, geometry(32, 4096), Duration::ZERO);
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let name = name.clone();
            std::thread::spawn(move || {
                let mut front = FrontDriver::attach(&name, FrontOptions { queue: Some(t % 2), ..FrontOptions::default() }).unwrap();
                for i in 0..2000u32 {
                    let payload: Vec<u8> = (0..(i % 300)).map(|k| (t * 31 + i + k) as u8).collect();
                    check_call(&mut front, t * 10_000 + i, &payload);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    service.stop();
}

#[test]
fn requests_and_replies_larger_than_the_buffer_go_in_fragments() {
    let name = unique("fragments");
    let service = Service::start(&name, geometry(4, 4096), Duration::ZERO);
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    for len in [0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 1 << 20] {
        // (Whole requests over 16 KiB would be answered in place; with
        // 4 KiB buffers every large one arrives in fragments and is copied.)
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        check_call(&mut front, 5, &payload);
    }
    // Beyond the service's limit: refused with -EMSGSIZE, and the channel
    // still works afterwards.
    let mut reply = vec![];
    let status = front.call(1, &vec![0u8; 9 << 20], &mut reply).unwrap();
    assert_eq!(status, -i64::from(libc::EMSGSIZE));
    check_call(&mut front, 2, b"still here");
    service.stop();
}

#[test]
fn call_into_puts_a_reply_that_fits_in_the_callers_buffer_and_any_other_in_rest() {
    let name = unique("into");
    let service = Service::start(&name, geometry(4, 4096), Duration::ZERO);
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    let mut out = [0xeeu8; 100];
    let mut rest = vec![1, 2, 3];
    for len in [0usize, 1, 99, 100, 101, 4096, 4097, 3 * 4096 + 17] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 11 % 251) as u8).collect();
        let (want_status, want) = answer(9, &payload);
        let (status, n) = front.call_into(9, &payload, &mut out, &mut rest).unwrap();
        assert_eq!((status, n), (want_status, len), "{len} bytes");
        if len <= out.len() {
            assert_eq!(&out[..n], &want[..], "{len} bytes, in out");
            assert!(rest.is_empty(), "{len} bytes: rest is cleared");
        } else {
            assert!(rest == want, "{len} bytes, in rest");
        }
        // The same through start and poll_into (one fragment out).
        if len <= 4096 {
            front.start(9, &payload).unwrap();
            let (status, n) = loop {
                if let Some(r) = front.poll_into(&mut out, &mut rest).unwrap() {
                    break r;
                }
            };
            assert_eq!((status, n), (want_status, len));
            assert!(if n <= out.len() { out[..n] == want[..] } else { rest == want }, "{len} bytes through poll_into");
        }
    }
    // A reply in fragments that fits the caller's buffer lands there too.
    let mut big = vec![0u8; 1 << 16];
    let payload: Vec<u8> = (0..3 * 4096 + 5).map(|i| (i % 199) as u8).collect();
    let (status, n) = front.call_into(3, &payload, &mut big, &mut rest).unwrap();
    let (want_status, want) = answer(3, &payload);
    assert_eq!((status, n), (want_status, payload.len()));
    assert!(big[..n] == want[..] && rest.is_empty());
    // Refused mid-way: the status, no reply.
    let (status, n) = front.call_into(1, &vec![0u8; 9 << 20], &mut out, &mut rest).unwrap();
    assert_eq!((status, n), (-i64::from(libc::EMSGSIZE), 0));
    assert!(rest.is_empty());
    service.stop();
}

#[test]
fn large_requests_can_be_answered_in_place() {
    let name = unique("inplace");
    let service = Service::start(&name, geometry(2, 1 << 20), Duration::ZERO);
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    for len in [100, 16 << 10, (16 << 10) + 1, 1 << 20] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        check_call(&mut front, 4, &payload);
    }
    service.stop();
}

#[test]
fn reserved_opcodes_are_refused_before_sending() {
    let name = unique("reserved");
    let service = Service::start(&name, geometry(2, 4096), Duration::ZERO);
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    let err = front.call(0xFFFF_0001, b"", &mut vec![]).unwrap_err();
    assert_eq!(err.code(), "ERR_IPC_INVALID_ARGUMENT");
    service.stop();
}

#[test]
fn attach_errors_have_codes() {
    assert_eq!(FrontDriver::attach(&unique("none"), FrontOptions::default()).unwrap_err().code(), "ERR_IPC_NOT_FOUND");
    let name = unique("full");
    let service = Service::start(&name, geometry(2, 4096), Duration::ZERO);
    let a = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    let _b = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    assert_eq!(FrontDriver::attach(&name, FrontOptions::default()).unwrap_err().code(), "ERR_IPC_NO_BUFFERS");
    drop(a);
    // A detached buffer is free again at once.
    let _c = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    assert_eq!(BackDriver::create(&name, BackOptions::default()).err().map(|e| e.code()), Some("ERR_IPC_EXISTS"));
    let bad = BackOptions { geometry: Geometry { queue_count: 0, ..geometry(2, 4096) }, ..BackOptions::default() };
    assert_eq!(BackDriver::create(&unique("bad"), bad).err().map(|e| e.code()), Some("ERR_IPC_INVALID_ARGUMENT"));
    service.stop();
}

#[test]
fn a_stopped_service_fails_waiting_clients_promptly() {
    let name = unique("stop");
    let mut back = BackDriver::create(&name, BackOptions { geometry: geometry(2, 4096), ..BackOptions::default() }).unwrap();
    let name2 = name.clone();
    let client = std::thread::spawn(move || {
        let mut front = FrontDriver::attach(&name2, FrontOptions::default()).unwrap();
        front.call(1, b"never answered", &mut vec![]).map_err(|e| e.code())
    });
    // Take the request, never complete it, and close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while back.take(1, Duration::ZERO, Duration::from_millis(10)).is_empty() {
        assert!(Instant::now() < deadline, "the request never arrived");
    }
    std::thread::sleep(Duration::from_millis(100));
    let closed = Instant::now();
    back.close();
    assert_eq!(client.join().unwrap(), Err("ERR_IPC_SERVICE_GONE"));
    assert!(closed.elapsed() < Duration::from_millis(500), "the client took {:?}", closed.elapsed());
    // Its names are gone: nobody can attach to a stopped service.
    assert_eq!(FrontDriver::attach(&name, FrontOptions::default()).unwrap_err().code(), "ERR_IPC_NOT_FOUND");
}

// ---- processes ------------------------------------------------------------

/// When run as a child (IPC_CHILD set), acts as a client and exits.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var("IPC_CHILD") else { return };
    let mut parts = spec.split(':');
    let (role, name) = (parts.next().unwrap(), parts.next().unwrap());
    let mut front = FrontDriver::attach(name, FrontOptions::default()).unwrap();
    match role {
        "echo" => {
            let id = std::process::id();
            for i in 0..500u32 {
                let payload: Vec<u8> = (0..(i % 5000)).map(|k| (id + i + k) as u8).collect();
                check_call(&mut front, i, &payload);
            }
        }
        // Sends a request the service holds, and waits to be killed.
        "hang" => {
            println!("attached");
            let _ = front.call(9, b"never answered in time", &mut vec![]);
            std::thread::sleep(Duration::from_secs(60));
        }
        _ => panic!("unknown role {role}"),
    }
    std::process::exit(0);
}

/// Waits for a child's line `want` on its stdout (the test harness prints
/// its own lines first), then keeps draining it so the child never blocks.
fn await_line(child: &mut std::process::Child, want: &str) {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            // The harness prints "test NAME ... " without a newline first.
            Some(Ok(l)) if l.trim_end().ends_with(want) => break,
            Some(Ok(_)) => continue,
            other => panic!("the child ended before printing {want:?}: {other:?}"),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
}

fn child(role: &str, name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("IPC_CHILD", format!("{role}:{name}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn client_processes_each_get_their_own_replies() {
    let name = unique("procs");
    let service = Service::start(&name, geometry(16, 4096), Duration::ZERO);
    let mut kids: Vec<_> = (0..4).map(|_| child("echo", &name)).collect();
    for k in &mut kids {
        assert!(k.wait().unwrap().success());
    }
    let (back, _) = service.stop();
    assert_eq!(back.refusals().protocol_errors, 0);
}

#[test]
fn a_client_killed_mid_request_is_reaped_and_its_buffer_reused() {
    let name = unique("reap");
    // Two buffers; the service holds each request for 200 ms.
    let service = Service::start(&name, geometry(2, 4096), Duration::from_millis(200));
    let mut k = child("hang", &name);
    await_line(&mut k, "attached");
    std::thread::sleep(Duration::from_millis(50));
    k.kill().unwrap();
    k.wait().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // Both buffers attach again: the dead client's one was reclaimed.
    let mut a = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    let _b = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    check_call(&mut a, 3, b"after the death");
    let (_, gone) = service.stop();
    assert_eq!(gone.len(), 1, "one client gone: {gone:?}");
}

#[test]
fn a_service_process_that_dies_fails_its_clients_promptly() {
    let name = unique("svcdeath");
    // The service: this binary in service role, which never answers.
    let mut svc = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "service_entry", "--nocapture", "--test-threads=1"])
        .env("IPC_SERVICE", &name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    await_line(&mut svc, "ready");
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        svc.kill().unwrap();
        svc.wait().unwrap();
        Instant::now()
    });
    let err = front.call(1, b"into the void", &mut vec![]).unwrap_err();
    let noticed = Instant::now();
    let killed = killer.join().unwrap();
    assert_eq!(err.code(), "ERR_IPC_SERVICE_GONE");
    assert!(noticed.saturating_duration_since(killed) < Duration::from_millis(500));
    // Its names stay behind (it could not clean up); a new service takes
    // over the endpoint and clients attach again.
    let service = Service::start(&name, geometry(2, 4096), Duration::ZERO);
    let mut again = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    check_call(&mut again, 5, b"restarted");
    service.stop();
}

/// When run as a child (IPC_SERVICE set): a service that takes requests and never answers.
#[test]
fn service_entry() {
    let Ok(name) = std::env::var("IPC_SERVICE") else { return };
    let mut back = BackDriver::create(&name, BackOptions { geometry: geometry(2, 4096), ..BackOptions::default() }).unwrap();
    println!("ready");
    loop {
        let _ = back.take(8, Duration::ZERO, Duration::from_millis(50));
    }
}

// ---- hostile input ----------------------------------------------------------

#[test]
fn garbage_from_a_hostile_client_leaves_the_service_and_other_clients_working() {
    let name = unique("hostile");
    let service = Service::start(&name, geometry(8, 4096), Duration::ZERO);
    // Attach in order, so the hostile client has buffer 0 and the honest
    // ones 1-4; buffers 5-7 stay free.
    let me = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    let fronts: Vec<_> = (0..4).map(|_| FrontDriver::attach(&name, FrontOptions::default()).unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let scribbled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // The hostile client scribbles on its own buffer, on free buffers and on
    // the header's doorbell words, and posts random descriptors and
    // descriptors naming its buffer's current request (garbage inside).
    let hostile = {
        let (name, stop, scribbled) = (name.clone(), stop.clone(), scribbled.clone());
        std::thread::spawn(move || {
            let seg = polytropon_shm::Segment::open(&name).unwrap();
            let queue = polytropon_rcqb::Rcqb::open(&format!("{name}.q0"), 0).unwrap();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
            let stride = 256 + 4096;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = [0usize, 0, 5, 6, 7][rng.below(5) as usize];
                let base = 4096 + target * stride;
                // SAFETY: every offset lies inside the mapped segment (header
                // plus 8 buffers); the words are plain u32/u8 cells.
                unsafe {
                    match rng.below(4) {
                        // Any control word of the buffer, any value.
                        0 => (seg.as_ptr().add(base + rng.below(64) as usize * 4) as *mut u32).write_volatile(rng.next() as u32),
                        // Request length: beyond the buffer.
                        1 => (seg.as_ptr().add(base + 72) as *mut u32).write_volatile([u32::MAX, 4097, 1 << 30][rng.below(3) as usize]),
                        // The header's doorbell and sleeping words.
                        2 => (seg.as_ptr().add(128 + rng.below(2) as usize * 4) as *mut u32).write_volatile(rng.next() as u32),
                        _ => seg.as_ptr().add(base + 256 + rng.below(4096) as usize).write_volatile(rng.next() as u8),
                    }
                }
                let d = if rng.below(2) == 0 {
                    rng.next()
                } else {
                    // SAFETY: reading a u32 word inside the segment.
                    let seq = unsafe { (seg.as_ptr().add(base + 64) as *const u32).read_volatile() };
                    1u64 << 48 | (target as u64) << 32 | u64::from(seq.wrapping_add(rng.below(2) as u32))
                };
                let _ = queue.try_enqueue_u64(d);
                n += 1;
                scribbled.store(n, Ordering::Relaxed);
                if n.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
            drop(me);
            n
        })
    };
    let honest: Vec<_> = fronts
        .into_iter()
        .enumerate()
        .map(|(t, mut front)| {
            let scribbled = scribbled.clone();
            std::thread::spawn(move || {
                // Call for as long as the hostile client scribbles (5000
                // times at least), whatever the scheduling.
                let mut i = 0u32;
                while i < 500 || (scribbled.load(Ordering::Relaxed) < 5000 && i < 500_000) {
                    i += 1;
                    let payload: Vec<u8> = (0..(i % 700)).map(|k| (t as u32 + i + k) as u8).collect();
                    check_call(&mut front, i, &payload);
                }
            })
        })
        .collect();
    for h in honest {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let scribbles = hostile.join().unwrap();
    let (back, _) = service.stop();
    let r = back.refusals();
    assert!(scribbles >= 5000, "the hostile client ran ({scribbles} scribbles)");
    assert!(r.stale_descriptors > 100, "random descriptors were refused: {r:?}");
}

/// xorshift: enough randomness for scribbling, no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A faulty client writes random words over a whole request queue while
/// honest clients use it and the other one: nothing is lost, nobody hangs.
#[test]
fn a_request_queue_scribbled_over_does_not_lose_requests() {
    let name = unique("queuegarbage");
    let service = Service::start(&name, geometry(8, 4096), Duration::ZERO);
    let fronts: Vec<_> = (0..4u32).map(|t| FrontDriver::attach(&name, FrontOptions { queue: Some(t % 2), ..FrontOptions::default() }).unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    // A faulty client writes random words all over queue 0's segment,
    // header included, as long as the honest clients run.
    let vandal = {
        let (name, stop) = (name.clone(), stop.clone());
        std::thread::spawn(move || {
            let seg = polytropon_shm::Segment::open(&format!("{name}.q0")).unwrap();
            let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ u64::from(std::process::id()));
            let words = seg.len() / 8;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: an aligned word inside the mapped segment.
                unsafe { (seg.as_ptr() as *mut u64).add(rng.below(words as u64) as usize).write_volatile(rng.next()) };
                n += 1;
                if n.is_multiple_of(256) {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            n
        })
    };
    let (done_tx, done_rx) = mpsc::channel();
    for (t, mut front) in fronts.into_iter().enumerate() {
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            for i in 0..300u32 {
                let payload: Vec<u8> = (0..(i % 200)).map(|k| (t as u32 * 7 + i + k) as u8).collect();
                check_call(&mut front, i, &payload);
            }
            done_tx.send(t).unwrap();
        });
    }
    for _ in 0..4 {
        // Every honest client finishes: lost descriptors are posted again
        // on the other queue. A hang fails here instead of hanging the run.
        done_rx.recv_timeout(Duration::from_secs(60)).expect("an honest client is stuck");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(vandal.join().unwrap() > 100);
    service.stop();
}

#[test]
fn every_client_that_leaves_is_reported_even_when_its_buffer_is_taken_at_once() {
    let name = unique("handover");
    // One buffer: each new client takes the buffer the last one left, often
    // before the service's periodic reap has looked.
    let service = Service::start(&name, geometry(1, 4096), Duration::ZERO);
    for i in 0..50u32 {
        let mut c = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
        check_call(&mut c, i, b"one call");
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(100));
    let (_, gone) = service.stop();
    let mut ids = gone.clone();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((gone.len(), ids.len()), (50, 50), "each client reported once: {gone:?}");
}

/// Signals (a profiler's, a timer's) interrupt the system calls of both
/// ends all the time: they must never be taken for a death of the other
/// side. A thread signals the clients and the service without pause while
/// the clients make calls that sleep for their replies.
#[test]
fn signals_are_not_taken_for_deaths() {
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: a handler that does nothing, installed without SA_RESTART so
    // that interrupted system calls fail with EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let name = unique("signals");
    let service = Service::start(&name, geometry(8, 4096), Duration::ZERO);
    let (tx, rx) = mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2u32)
        .map(|t| {
            let (name, tx) = (name.clone(), tx.clone());
            std::thread::spawn(move || {
                // SAFETY: the calling thread's own id.
                tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
                // No spinning: every call sleeps, and checks the service when woken.
                let mut front = FrontDriver::attach(&name, FrontOptions { spin: Duration::ZERO, queue: Some(t % 2) }).unwrap();
                let start = Instant::now();
                let mut i = 0u32;
                while start.elapsed() < Duration::from_millis(1500) {
                    check_call(&mut front, t * 100_000 + i % 1000, &i.to_le_bytes());
                    i += 1;
                }
                // Still attached when the service stops: any client it
                // reports gone was taken for dead.
                (i, front)
            })
        })
        .collect();
    let mut targets: Vec<usize> = (0..2).map(|_| rx.recv().unwrap()).collect();
    targets.push(service.pthread);
    let signaller = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !done.load(Ordering::Relaxed) {
                for &t in &targets {
                    // SAFETY: the client and service threads outlive this
                    // loop (joined after `done`).
                    unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGUSR1) };
                    sent += 1;
                }
            }
            sent
        })
    };
    let (calls, fronts): (Vec<u32>, Vec<FrontDriver>) = clients.into_iter().map(|c| c.join().expect("a client saw the service die")).unzip();
    done.store(true, Ordering::Relaxed);
    let sent = signaller.join().unwrap();
    let (_, gone) = service.stop();
    drop(fronts);
    assert!(gone.is_empty(), "the service took live clients for gone: {gone:?}");
    assert!(calls.iter().all(|&n| n > 100), "calls per client: {calls:?}");
    assert!(sent > 10_000, "signals sent: {sent}");
}

#[test]
fn a_reply_begun_in_place_goes_on_in_fragments() {
    // The service writes the first part of each reply straight into the
    // client's buffer and hands the rest over (as a read larger than the
    // buffer is served); the client gets the whole reply, in order.
    let name = unique("in-place-then");
    let room = 4096usize;
    let pattern = |n: usize| -> Vec<u8> { (0..n).map(|i| (i * 13 % 253) as u8).collect() };
    let (ready_tx, ready_rx) = mpsc::channel();
    let (name2, stop) = (name.clone(), Arc::new(AtomicBool::new(false)));
    let stop2 = stop.clone();
    let service = std::thread::spawn(move || {
        let mut back = BackDriver::create(&name2, BackOptions { geometry: geometry(2, room as u32), max_request: 1 << 20, copy_limit: 16 << 10 }).unwrap();
        ready_tx.send(()).unwrap();
        // Until the client has every reply: a reply's later fragments are
        // sent from `take`, as the client asks for them.
        while !stop2.load(Ordering::Relaxed) {
            for r in back.take(8, Duration::from_micros(50), Duration::from_millis(5)) {
                let want = u32::from_le_bytes(r.payload[..4].try_into().unwrap()) as usize;
                let reply = pattern(want);
                let first = want.min(room);
                let (at, size) = back.request_area(r.token()).unwrap();
                assert_eq!(size, room);
                if want > room {
                    assert!(!back.complete_in_place_then(r.token(), 1, first - 1, &reply[first..]), "a rest after a part-filled area is refused");
                }
                // SAFETY: the area is the in-flight request's, `room` bytes long.
                unsafe { std::ptr::copy_nonoverlapping(reply.as_ptr(), at, first) };
                assert!(back.complete_in_place_then(r.token(), want as i64, first, &reply[first..]));
            }
        }
    });
    ready_rx.recv().unwrap();
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    for want in [0usize, 1, room - 1, room, room + 1, 3 * room + 5, 64 << 10] {
        let mut reply = vec![];
        let status = front.call(3, &(want as u32).to_le_bytes(), &mut reply).unwrap();
        assert_eq!(status, want as i64);
        assert!(reply == pattern(want), "a reply of {want} bytes arrived whole and in order");
    }
    // Polled, a reply in fragments is left to `finish`: collecting it would
    // wait for the service (on an event loop that may be the service's own
    // thread, forever).
    let want = 3 * room + 5;
    front.start(3, &(want as u32).to_le_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (mut out, mut rest) = (vec![0u8; 16], vec![]);
    assert_eq!(front.poll_into(&mut out, &mut rest).unwrap(), None, "a fragmented reply is not polled");
    assert_eq!(front.finish_into(&mut out, &mut rest).unwrap(), (want as i64, want));
    assert!(rest == pattern(want));
    front.start(3, &5u32.to_le_bytes()).unwrap();
    let (status, n) = loop {
        if let Some(r) = front.poll_into(&mut out, &mut rest).unwrap() {
            break r;
        }
    };
    assert!((status, n) == (5, 5) && out[..5] == pattern(5)[..], "a whole reply is");
    stop.store(true, Ordering::Relaxed);
    service.join().unwrap();
}

#[test]
fn a_reply_split_into_a_header_and_the_callers_buffer_arrives_whole() {
    let name = unique("split");
    let service = Service::start(&name, geometry(4, 4096), Duration::ZERO);
    let mut front = FrontDriver::attach(&name, FrontOptions::default()).unwrap();
    for len in [0usize, 1, 5, 4095, 4096, 4097, 3 * 4096 + 17] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 11 % 249) as u8).collect();
        let (want_status, want) = answer(9, &payload);
        for head_len in [0usize, 1, 7, 4096] {
            let head_len = head_len.min(len);
            let (mut head, mut body) = (vec![0xEE; head_len], vec![0xEE; len - head_len + 3]);
            let (status, n) = front.call_split(9, &payload, &mut head, &mut body).unwrap();
            assert_eq!((status, n), (want_status, len), "{len} bytes, a head of {head_len}");
            assert!(head == want[..head_len] && body[..len - head_len] == want[head_len..], "{len} bytes, a head of {head_len}: in order");
            assert!(body[len - head_len..].iter().all(|&b| b == 0xEE), "nothing past the reply");
        }
        if len > 1 {
            let (mut head, mut body) = (vec![0u8; 1], vec![0u8; len - 2]);
            let err = front.call_split(9, &payload, &mut head, &mut body).unwrap_err();
            assert_eq!(err.code(), "ERR_IPC_PROTOCOL", "a reply longer than its room: {err}");
            check_call(&mut front, 4, &payload[..len / 2]);
        }
    }
    service.stop();
}
