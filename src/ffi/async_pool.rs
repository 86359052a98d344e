//! Worker threads for ReadAsync/WriteAsync. Started on first use (never in InitEx, so a
//! process may fork after InitEx as nbdkit does); requests on one disk run in parallel where
//! the disk allows it (reads share a lock, writes take it exclusively).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

/// A unit of asynchronous work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Worker count: I/O-bound work, so more threads than cores helps overlap requests.
const WORKERS: usize = 8;

static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        job();
    }
}

/// Queues `job` on the pool; returns false if no worker could be started.
pub fn submit(job: Job) -> bool {
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let rx = Arc::clone(&rx);
            let _ = std::thread::Builder::new()
                .name(format!("vixdisklib-io-{i}"))
                .spawn(move || worker(rx));
        }
        Mutex::new(tx)
    });
    queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .is_ok()
}
