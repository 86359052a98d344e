//! The thread that runs finished asynchronous requests' completions, outside libnbd's locks
//! and never on the poller: a completion may block or call the library synchronously (a remote
//! Read needs the poller to finish) without stalling every connection. One per process,
//! started on first use; a forked child starts its own (the parent's threads are not copied).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, MutexGuard};

use crate::log;

/// Work to run on the callback thread.
pub type Deferred = Box<dyn FnOnce() + Send>;

/// The callback thread's queue and the process it belongs to.
struct Queue {
    pid: u32,
    jobs: Sender<Deferred>,
}

static QUEUE: Mutex<Option<Queue>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's queue, its thread started as needed; None if it cannot start.
fn queue() -> Option<Sender<Deferred>> {
    let pid = std::process::id();
    let mut slot = lock(&QUEUE);
    if let Some(q) = slot.as_ref()
        && q.pid == pid
    {
        return Some(q.jobs.clone());
    }
    let (jobs, rx) = channel::<Deferred>();
    let started = std::thread::Builder::new()
        .name("vixdisklib-nbd-cb".into())
        .spawn(move || run(rx));
    if started.is_err() {
        log::warn("NBD: cannot start the callback thread");
        return None;
    }
    // An inherited queue belongs to the parent process: forgotten, never used here.
    if let Some(stale) = slot.replace(Queue {
        pid,
        jobs: jobs.clone(),
    }) {
        std::mem::forget(stale);
    }
    Some(jobs)
}

/// Queues `job` for the callback thread. Without one (it cannot start) it runs here.
pub fn defer(job: Deferred) {
    let job = match queue() {
        Some(q) => match q.send(job) {
            Ok(()) => return,
            Err(unsent) => unsent.0,
        },
        None => job,
    };
    job();
}

/// Runs finished requests' completions in order, one at a time.
fn run(queue: Receiver<Deferred>) {
    while let Ok(job) = queue.recv() {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            log::warn("NBD: a completion callback panicked");
        }
    }
}
