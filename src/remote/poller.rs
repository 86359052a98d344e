//! The one thread that drives every NBD connection of the process: it polls their sockets,
//! lets libnbd read and write as they become ready (which runs completion callbacks), and
//! kills connections whose requests outlive the timeout. Finished async requests' callbacks
//! run on another thread (`callbacks`). Requests are sent from the caller's thread; no thread
//! is created per request or per disk.
//!
//! Started on first use; a forked child starts its own (the parent's threads are not copied).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::sys::{self, PollFd};
use crate::log;

/// A connection the poller drives.
pub trait Pollable: Send + Sync {
    /// Its socket and the events libnbd waits for (a negative fd is skipped).
    fn poll_fd(&self) -> PollFd;
    /// Whether it is over (dead or closed): the poller drops it.
    fn is_finished(&self) -> bool;
    /// The socket is readable (or hung up).
    fn notify_read(&self);
    /// The socket is writable.
    fn notify_write(&self);
    /// Kills the connection if the server kept it waiting past its timeout.
    fn check_deadline(&self, now: Instant);
}

/// How often deadlines are checked when nothing happens.
const TICK: Duration = Duration::from_millis(200);

/// A connection as the poller holds it.
type Conn = Arc<dyn Pollable>;

#[derive(Default)]
struct Shared {
    conns: Vec<Conn>,
}

/// The running poller of this process: how to wake it and the connections it drives.
#[derive(Clone)]
struct Poller {
    pid: u32,
    /// Our end of the wake-up socket pair (non-blocking).
    wake: Arc<UnixStream>,
    shared: Arc<Mutex<Shared>>,
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
    let Ok((wake, wake_read)) = UnixStream::pair() else {
        log::warn("NBD: cannot create the poller's wake-up socket");
        return None;
    };
    if wake.set_nonblocking(true).is_err() || wake_read.set_nonblocking(true).is_err() {
        log::warn("NBD: cannot make the poller's wake-up socket non-blocking");
        return None;
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let thread_shared = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .name("vixdisklib-nbd".into())
        .spawn(move || run(wake_read, thread_shared));
    if spawned.is_err() {
        log::warn("NBD: cannot start the poller thread");
        return None;
    }
    let poller = Poller {
        pid,
        wake: Arc::new(wake),
        shared,
    };
    // An inherited poller belongs to the parent process: forgotten, never used here.
    if let Some(stale) = slot.replace(poller.clone()) {
        std::mem::forget(stale);
    }
    Some(poller)
}

fn wake_up(wake: &UnixStream) {
    // A full socket buffer (WouldBlock) already guarantees a wake-up.
    let _ = (&*wake).write(&[1]);
}

/// Wakes the poller so it re-reads every connection's direction.
pub fn wake() {
    if let Some(p) = running() {
        wake_up(&p.wake);
    }
}

/// Adds a connected handle to the poller; false if the poller cannot run.
pub fn register(conn: Conn) -> bool {
    match running() {
        Some(p) => {
            lock(&p.shared).conns.push(conn);
            wake_up(&p.wake);
            true
        }
        None => false,
    }
}

fn drain(mut wake_read: &UnixStream) {
    let mut buf = [0u8; 256];
    while matches!(wake_read.read(&mut buf), Ok(n) if n > 0) {}
}

fn run(wake_read: UnixStream, shared: Arc<Mutex<Shared>>) {
    let mut fds: Vec<PollFd> = Vec::new();
    loop {
        // A panic in one round must not stop every connection of the process for good.
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_once(&wake_read, &shared, &mut fds)
        }));
        if round.is_err() {
            log::warn("NBD: the poller recovered from a panic; polling goes on");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One round: wait for any connection to be ready (or the tick), drive libnbd, enforce
/// the timeouts.
fn poll_once(wake_read: &UnixStream, shared: &Arc<Mutex<Shared>>, fds: &mut Vec<PollFd>) {
    // Finished connections leave the list here but are dropped after the lock is released:
    // the last reference closes the libnbd handle, whose free callbacks may need `defer`.
    let (conns, finished): (Vec<Conn>, Vec<Conn>) = std::mem::take(&mut lock(shared).conns)
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
    fds.push(PollFd {
        fd: wake_read.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    fds.extend(conns.iter().map(|c| c.poll_fd()));
    let n = sys::poll(fds, TICK.as_millis() as i32);
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
        c.check_deadline(now);
    }
}
