//! Requests in flight: one VDDK request (an `Op`) becomes one or more NBD commands (`Part`s,
//! the `user_data` libnbd hands back to our completion callback). Every part reports exactly
//! once — when it completes, or, if libnbd drops the command without completing it (a failed
//! submission, a dead connection, nbd_close), when libnbd frees it — so an op always finishes
//! and a waiter is never stranded.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::callbacks;
use super::sys::Completion;
use crate::backend::Finish;
use crate::error::{Error, Result};

/// Why a connection died; requests on it fail with the matching error.
#[derive(Debug, Clone)]
pub enum Death {
    /// A request (or the handshake) outlived the timeout.
    Timeout(String),
    /// The server closed or reset the connection, or a protocol error killed it.
    Lost(String),
}

impl Death {
    /// The error requests on a connection dead for this reason fail with.
    pub fn to_error(&self) -> Error {
        match self {
            Death::Timeout(m) => Error::RemoteTimeout(m.clone()),
            Death::Lost(m) => Error::RemoteConnectionLost(m.clone()),
        }
    }
}

/// What every part of a connection shares: its name for messages, why it died (if it did),
/// and how long the server has kept commands waiting (for the timeout).
pub struct ConnState {
    /// `nbd://host:port export "name"`, for messages.
    pub name: String,
    /// Bound on the server's silence while commands wait.
    pub timeout: Duration,
    death: Mutex<Option<Death>>,
    activity: Mutex<Activity>,
    /// When the session was asked to end (a server that never lets go is cut off too).
    closing_since: Mutex<Option<Instant>>,
}

/// Commands in flight, and since when the server owes an answer: its last answer, or the
/// moment a command was sent to an idle connection. Measuring from there, not from each
/// command's submission, lets a program queue more than the server answers within the
/// timeout (a full-disk ReadAsync fan-out) without a healthy connection being cut.
struct Activity {
    in_flight: usize,
    owed_since: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnState {
    /// State for a new connection.
    pub fn new(name: String, timeout: Duration) -> ConnState {
        ConnState {
            name,
            timeout,
            death: Mutex::new(None),
            activity: Mutex::new(Activity {
                in_flight: 0,
                owed_since: Instant::now(),
            }),
            closing_since: Mutex::new(None),
        }
    }

    /// Why the connection died, if it did.
    pub fn death(&self) -> Option<Death> {
        lock(&self.death).clone()
    }

    /// Records the first reason the connection died; true if this was the first.
    pub fn mark_dead(&self, why: Death) -> bool {
        let mut d = lock(&self.death);
        if d.is_none() {
            *d = Some(why);
            true
        } else {
            false
        }
    }

    /// Fails if the connection is known dead.
    pub fn check_alive(&self) -> Result<()> {
        match self.death() {
            Some(d) => Err(d.to_error()),
            None => Ok(()),
        }
    }

    /// The server has left commands, or the end of the session, unanswered for longer
    /// than the timeout.
    pub fn overdue(&self, now: Instant) -> bool {
        let late = |t: Instant| now.saturating_duration_since(t) > self.timeout;
        lock(&self.closing_since).is_some_and(late) || self.silent_for(now) > self.timeout
    }

    /// How long commands have waited with no answer from the server (zero when none wait).
    pub fn silent_for(&self, now: Instant) -> Duration {
        let a = lock(&self.activity);
        if a.in_flight == 0 {
            Duration::ZERO
        } else {
            now.saturating_duration_since(a.owed_since)
        }
    }

    /// Whether the session was asked to end.
    pub fn is_closing(&self) -> bool {
        lock(&self.closing_since).is_some()
    }

    /// Records that the session was asked to end; false if it already was.
    pub fn mark_closing(&self) -> bool {
        let mut c = lock(&self.closing_since);
        if c.is_some() {
            return false;
        }
        *c = Some(Instant::now());
        true
    }

    /// Commands in flight.
    pub fn in_flight(&self) -> usize {
        lock(&self.activity).in_flight
    }

    fn begin(&self) {
        let mut a = lock(&self.activity);
        if a.in_flight == 0 {
            a.owed_since = Instant::now();
        }
        a.in_flight += 1;
    }

    /// A command was answered (or dropped): the server's clock starts again.
    fn end(&self) {
        let mut a = lock(&self.activity);
        a.in_flight = a.in_flight.saturating_sub(1);
        a.owed_since = Instant::now();
    }

    /// The error for a command that failed with `errno` (0: dropped without an answer).
    fn command_error(&self, errno: i32) -> Error {
        if let Some(d) = self.death() {
            return d.to_error();
        }
        match errno {
            0 | libc::ENOTCONN | libc::ECONNRESET | libc::EPIPE | libc::ESHUTDOWN => {
                Error::RemoteConnectionLost(format!("{}: the server stopped answering", self.name))
            }
            e => Error::Io {
                path: format!("{} (server)", self.name).into(),
                source: std::io::Error::from_raw_os_error(e),
            },
        }
    }
}

struct OpState {
    remaining: usize,
    error: Option<Error>,
    finished: bool,
    /// Runs when the op finishes (on the callback thread, never holding a libnbd lock);
    /// None: a synchronous waiter collects the result.
    on_finish: Option<Finish>,
}

/// One VDDK request.
pub struct Op {
    state: Mutex<OpState>,
    done: Condvar,
}

impl Op {
    /// An op of `parts` commands; `on_finish` (if any) runs on the callback thread. The op
    /// also waits for its submitter's `submitted`, so it cannot finish while commands are
    /// still being sent, and one of no commands (zero sectors) finishes there, callback
    /// included.
    pub fn new(parts: usize, on_finish: Option<Finish>) -> Arc<Op> {
        Arc::new(Op {
            state: Mutex::new(OpState {
                remaining: parts + 1,
                error: None,
                finished: false,
                on_finish,
            }),
            done: Condvar::new(),
        })
    }

    /// One part is over.
    pub fn part_done(&self, result: Result<()>) {
        let mut st = lock(&self.state);
        if let Err(e) = result
            && st.error.is_none()
        {
            st.error = Some(e);
        }
        self.settle(st, 1);
    }

    /// The submitter is done: every command was sent, or `refused` says why the one that
    /// failed to go out was refused and how many after it were never sent. The refusal's
    /// reason replaces what the refused command reported when libnbd dropped it.
    pub fn submitted(&self, refused: Option<(Error, usize)>) {
        let mut st = lock(&self.state);
        let unsent = match refused {
            Some((e, unsent)) => {
                st.error = Some(e);
                unsent
            }
            None => 0,
        };
        self.settle(st, unsent + 1);
    }

    /// Counts `n` parts over; finishes the op after the last.
    fn settle(&self, mut st: MutexGuard<'_, OpState>, n: usize) {
        st.remaining = st.remaining.saturating_sub(n);
        if st.remaining > 0 || st.finished {
            return;
        }
        st.finished = true;
        let finish = st.on_finish.take();
        let result = match finish {
            Some(_) => st.error.take().map_or(Ok(()), Err),
            None => Ok(()),
        };
        self.done.notify_all();
        drop(st);
        if let Some(f) = finish {
            callbacks::defer(Box::new(move || f(result)));
        }
    }

    /// Waits up to `limit` for a synchronous op; None if it is still running.
    pub fn wait(&self, limit: Duration) -> Option<Result<()>> {
        let deadline = Instant::now() + limit;
        let mut st = lock(&self.state);
        while !st.finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Some(st.error.take().map_or(Ok(()), Err))
    }
}

/// One NBD command of an op: the `user_data` of its completion callback.
pub struct Part {
    op: Arc<Op>,
    conn: Arc<ConnState>,
    reported: bool,
}

impl Part {
    fn report(&mut self, result: Result<()>) {
        if !self.reported {
            self.reported = true;
            self.conn.end();
            self.op.part_done(result);
        }
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        // Dropped by libnbd without a completion: the command was refused or abandoned.
        let err = self.conn.command_error(0);
        self.report(Err(err));
    }
}

impl Completion for Part {
    fn complete(&mut self, errno: i32) {
        let result = match errno {
            0 => Ok(()),
            e => Err(self.conn.command_error(e)),
        };
        self.report(result);
    }
}

/// The completion of one more command of `op` on `conn`; libnbd owns it once it is submitted.
pub fn completion(op: &Arc<Op>, conn: &Arc<ConnState>) -> Part {
    conn.begin();
    Part {
        op: Arc::clone(op),
        conn: Arc::clone(conn),
        reported: false,
    }
}
