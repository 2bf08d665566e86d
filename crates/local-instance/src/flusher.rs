//! fsync and fdatasync off the service's thread. A flush can take
//! milliseconds (the device's cache, a journal commit); the service's take
//! loop answers every client, so it hands flushes to a few threads of their
//! own, as the JavaScript side hands them to libuv's pool, and completes
//! them when they are done.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Threads that flush (started at the first flush).
const THREADS: usize = 4;

/// Called by a flushing thread after it finished a flush: wakes the
/// service if it sleeps, so that it completes the request.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

struct Job {
    tag: u64,
    datasync: bool,
    fd: Arc<OwnedFd>,
    t0: Instant,
}

/// A finished flush: the caller's tag, its errno (0: done) and how long it took, in µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Done {
    pub tag: u64,
    pub errno: i32,
    pub datasync: bool,
    pub us: f64,
}

pub struct Flusher {
    jobs: Option<Sender<Job>>,
    done: Arc<Mutex<Vec<Done>>>,
    notify: Notify,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").field("started", &self.jobs.is_some()).finish()
    }
}

impl Flusher {
    pub fn new(notify: Notify) -> Flusher {
        Flusher { jobs: None, done: Arc::default(), notify }
    }

    /// Flushes `fd` on a flushing thread; [`Flusher::finished`] gives the result.
    pub fn flush(&mut self, tag: u64, fd: Arc<OwnedFd>, datasync: bool) {
        let jobs = self.jobs.get_or_insert_with(|| {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..THREADS {
                let (rx, done, notify) = (rx.clone(), self.done.clone(), self.notify.clone());
                std::thread::Builder::new()
                    .name("polytropon-flush".into())
                    .spawn(move || work(&rx, &done, &notify))
                    .expect("a flushing thread starts");
            }
            tx
        });
        // The threads live as long as the sender: a send cannot fail.
        let _ = jobs.send(Job { tag, datasync, fd, t0: Instant::now() });
    }

    /// Flushes finished since the last call.
    pub fn finished(&self) -> Vec<Done> {
        self.done.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }

    /// A handle on the finished list for another thread's check (see `has_finished`).
    pub fn finished_list(&self) -> Arc<Mutex<Vec<Done>>> {
        self.done.clone()
    }
}

fn work(rx: &Mutex<Receiver<Job>>, done: &Mutex<Vec<Done>>, notify: &Notify) {
    loop {
        // The lock is held only to take one job.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let fd = job.fd.as_raw_fd();
        // SAFETY: `fd` stays open while `job.fd` (an Arc) lives.
        let rc = unsafe { if job.datasync { libc::fdatasync(fd) } else { libc::fsync(fd) } };
        let errno = if rc < 0 { crate::root::errno() } else { 0 };
        let us = job.t0.elapsed().as_secs_f64() * 1e6;
        drop(job.fd);
        if let Ok(mut d) = done.lock() {
            d.push(Done { tag: job.tag, errno, datasync: job.datasync, us });
        }
        notify();
    }
}
