//! Worker threads for local disks' asynchronous reads and writes (ReadAsync/WriteAsync).
//! Started on first use (never in InitEx, so a process may fork after InitEx as nbdkit does);
//! requests on one disk run in parallel where
//! the disk allows it (reads share a lock, writes take it exclusively).
//!
//! A forked child inherits the pool's queue but none of its threads, so a request queued there
//! would never run and Wait would block forever. The pool therefore remembers the process that
//! started it and a new process starts its own.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// A unit of asynchronous work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Worker count: I/O-bound work, so more threads than cores helps overlap requests.
const WORKERS: usize = 8;

/// The running pool: its queue and the process whose threads serve it.
struct Pool {
    pid: u32,
    queue: Sender<Job>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        job();
    }
}

/// Starts the workers; None if not a single thread could be started (then nothing would ever
/// run the queue, so the caller must not use it).
fn start() -> Option<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let started = (0..WORKERS)
        .filter(|i| {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("vixdisklib-io-{i}"))
                .spawn(move || worker(rx))
                .is_ok()
        })
        .count();
    (started > 0).then_some(tx)
}

/// The queue of this process's pool, started (or restarted after fork) as needed.
fn queue() -> Option<Sender<Job>> {
    let pid = std::process::id();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match pool.as_ref() {
        Some(p) if p.pid == pid => Some(p.queue.clone()),
        _ => {
            let queue = start()?;
            // An inherited pool belongs to the parent: its channel may be mid-operation in a
            // thread that does not exist here, so it is forgotten rather than dropped.
            if let Some(stale) = pool.replace(Pool {
                pid,
                queue: queue.clone(),
            }) {
                std::mem::forget(stale);
            }
            Some(queue)
        }
    }
}

/// Queues `job` on the pool; returns false if no worker could be started.
pub fn submit(job: Job) -> bool {
    queue().is_some_and(|q| q.send(job).is_ok())
}
