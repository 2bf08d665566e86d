//! Round trip between two threads over two RCQB queues, in pure Rust: the
//! floor under the JS binding's figures. `cargo run --release -p polytropon-rcqb --example pingpong`
use std::sync::Arc;
use std::time::Instant;

use polytropon_rcqb::{Options, Rcqb};

fn main() {
    let n = 200_000u64;
    let mk = || Arc::new(Rcqb::create(Options { capacity: 64, item_size: 8, ..Options::default() }).unwrap());
    let (ping, pong) = (mk(), mk());
    let (p2, q2) = (ping.clone(), pong.clone());
    let echo = std::thread::spawn(move || {
        for _ in 0..n {
            q2.enqueue_u64(p2.dequeue_u64().unwrap()).unwrap();
        }
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping.enqueue_u64(i).unwrap();
        pong.dequeue_u64().unwrap();
    }
    echo.join().unwrap();
    println!("{:.0} ns per round trip", t0.elapsed().as_nanos() as f64 / n as f64);
}
