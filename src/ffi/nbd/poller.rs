//! The one thread that drives every NBD connection of the process: it polls their sockets,
//! lets libnbd read and write as they become ready (which runs completion callbacks), and
//! kills connections whose requests outlive the timeout. Finished async requests' VDDK
//! callbacks run on a second thread, outside libnbd's locks and never on the poller: a
//! callback may block or call the library synchronously (a remote Read needs the poller to
//! finish) without stalling every connection. Requests are sent from the caller's thread; no
//! thread is created per request or per disk.
//!
//! Started on first use; a forked child starts its own (the parent's threads are not copied).

use std::os::fd::RawFd;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::log;

use super::client::Conn;
use super::libnbd::{LIBNBD_AIO_DIRECTION_READ, LIBNBD_AIO_DIRECTION_WRITE};
use super::ops::Death;

/// Work to run on the callback thread, outside libnbd's locks.
pub type Deferred = Box<dyn FnOnce() + Send>;

/// How often deadlines are checked when nothing happens.
const TICK: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Shared {
    conns: Vec<Arc<Conn>>,
}

/// The running threads of this process: how to wake the poller, the connections it drives,
/// and the callback thread's queue.
#[derive(Clone)]
struct Poller {
    pid: u32,
    /// Write end of the wake-up pipe.
    wake_fd: RawFd,
    shared: Arc<Mutex<Shared>>,
    callbacks: Sender<Deferred>,
}

static POLLER: Mutex<Option<Poller>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running poller, started (or restarted after fork) as needed.
fn running() -> Option<Poller> {
    let pid = std::process::id();
    let mut slot = lock(&POLLER);
    if let Some(p) = slot.as_ref()
        && p.pid == pid
    {
        return Some(p.clone());
    }
    let (callbacks, queue) = channel::<Deferred>();
    let callback_thread = std::thread::Builder::new()
        .name("vixdisklib-nbd-cb".into())
        .spawn(move || run_callbacks(queue));
    if callback_thread.is_err() {
        log::warn("NBD: cannot start the callback thread");
        return None;
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        log::warn("NBD: cannot create the poller's wake-up pipe");
        return None;
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let thread_shared = Arc::clone(&shared);
    let read_fd = fds[0];
    let spawned = std::thread::Builder::new()
        .name("vixdisklib-nbd".into())
        .spawn(move || run(read_fd, thread_shared));
    if spawned.is_err() {
        // SAFETY: both descriptors were just created by pipe2 and are not used elsewhere.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        log::warn("NBD: cannot start the poller thread");
        return None;
    }
    let poller = Poller {
        pid,
        wake_fd: fds[1],
        shared,
        callbacks,
    };
    // An inherited poller belongs to the parent process: forgotten, never used here.
    if let Some(stale) = slot.replace(poller.clone()) {
        std::mem::forget(stale);
    }
    Some(poller)
}

fn wake_fd(fd: RawFd) {
    let byte = 1u8;
    // SAFETY: writes one byte from a live local to the pipe's non-blocking write end; a full
    // pipe (EAGAIN) already guarantees a wake-up.
    let _ = unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
}

/// Wakes the poller so it re-reads every connection's direction.
pub fn wake() {
    if let Some(p) = running() {
        wake_fd(p.wake_fd);
    }
}

/// Adds a connected handle to the poller; false if the poller cannot run.
pub fn register(conn: Arc<Conn>) -> bool {
    match running() {
        Some(p) => {
            lock(&p.shared).conns.push(conn);
            wake_fd(p.wake_fd);
            true
        }
        None => false,
    }
}

/// Queues `job` for the callback thread. Without one (it cannot start) it runs here.
pub fn defer(job: Deferred) {
    let job = match running() {
        Some(p) => match p.callbacks.send(job) {
            Ok(()) => return,
            Err(unsent) => unsent.0,
        },
        None => job,
    };
    job();
}

/// The callback thread: runs finished requests' callbacks in order, one at a time.
fn run_callbacks(queue: Receiver<Deferred>) {
    while let Ok(job) = queue.recv() {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            log::warn("NBD: a completion callback panicked");
        }
    }
}

fn drain(fd: RawFd) {
    let mut buf = [0u8; 256];
    // SAFETY: reads into a live local buffer of the stated size from our non-blocking pipe.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

fn run(wake_read: RawFd, shared: Arc<Mutex<Shared>>) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        // A panic in one round must not stop every connection of the process for good.
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_once(wake_read, &shared, &mut fds)
        }));
        if round.is_err() {
            log::warn("NBD: the poller recovered from a panic; polling goes on");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One round: wait for any connection to be ready (or the tick), drive libnbd, enforce
/// the timeouts.
fn poll_once(wake_read: RawFd, shared: &Arc<Mutex<Shared>>, fds: &mut Vec<libc::pollfd>) {
    // Finished connections leave the list here but are dropped after the lock is released:
    // the last reference closes the libnbd handle, whose free callbacks may need `defer`.
    let (conns, finished): (Vec<Arc<Conn>>, Vec<Arc<Conn>>) =
        std::mem::take(&mut lock(shared).conns)
            .into_iter()
            .partition(|c| !c.is_finished());
    drop(finished);
    let conns = {
        let mut s = lock(shared);
        // Connections registered meanwhile stay behind the ones kept.
        let added = std::mem::replace(&mut s.conns, conns);
        s.conns.extend(added);
        s.conns.clone()
    };
    fds.clear();
    fds.push(libc::pollfd {
        fd: wake_read,
        events: libc::POLLIN,
        revents: 0,
    });
    for c in &conns {
        let (fd, dir) = c.fd_and_direction();
        let mut events = 0;
        if dir & LIBNBD_AIO_DIRECTION_READ != 0 {
            events |= libc::POLLIN;
        }
        if dir & LIBNBD_AIO_DIRECTION_WRITE != 0 {
            events |= libc::POLLOUT;
        }
        // A negative fd is ignored by poll (the handle is closing).
        fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
    }
    // SAFETY: `fds` is a live array of `fds.len()` pollfd entries.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            TICK.as_millis() as libc::c_int,
        )
    };
    if n > 0 {
        for (c, p) in conns.iter().zip(&fds[1..]) {
            if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                c.notify_read();
            } else if p.revents & libc::POLLOUT != 0 {
                c.notify_write();
            }
        }
        if fds[0].revents != 0 {
            drain(wake_read);
        }
    }
    let now = Instant::now();
    for c in &conns {
        if c.state.overdue(now) {
            let why = format!(
                "{}: no answer within {} s",
                c.state.name,
                c.state.timeout.as_secs()
            );
            c.kill(Death::Timeout(why));
        }
    }
}
