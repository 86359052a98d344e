//! Handle registries: C handles are opaque tokens that are never dereferenced, so NULL, stale,
//! foreign and double-closed handles are detected (VIX_E_INVALID_ARG) instead of crashing.
//! Tokens are never reused, so a stale handle cannot alias a newer object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{Disk, Error, Result};

/// A registry of live objects keyed by the token handed to C.
pub struct Registry<T> {
    what: &'static str,
    live: Mutex<Option<HashMap<usize, Arc<T>>>>,
}

/// Tokens look like aligned pointers so C code that prints or compares them behaves.
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(0x1000);

impl<T> Registry<T> {
    /// An empty registry; `what` names the handle kind in messages.
    pub const fn new(what: &'static str) -> Self {
        Registry {
            what,
            live: Mutex::new(None),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Option<HashMap<usize, Arc<T>>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `value`; returns its token.
    pub fn insert(&self, value: T) -> usize {
        let token = NEXT_TOKEN.fetch_add(0x10, Ordering::Relaxed);
        self.map()
            .get_or_insert_with(HashMap::new)
            .insert(token, Arc::new(value));
        token
    }

    /// Looks up a live handle.
    pub fn get(&self, token: usize) -> Result<Arc<T>> {
        if token == 0 {
            return Err(Error::InvalidArg(format!("{} handle is NULL", self.what)));
        }
        self.map()
            .as_ref()
            .and_then(|m| m.get(&token).cloned())
            .ok_or_else(|| {
                Error::InvalidArg(format!(
                    "{} handle {token:#x} is not open (closed already, or never ours)",
                    self.what
                ))
            })
    }

    /// Unregisters a handle, returning the object.
    pub fn remove(&self, token: usize) -> Result<Arc<T>> {
        self.get(token)?;
        self.map()
            .as_mut()
            .and_then(|m| m.remove(&token))
            .ok_or_else(|| Error::InvalidArg(format!("{} handle closed concurrently", self.what)))
    }

    /// Unregisters every handle for which `pred` holds, returning them.
    pub fn remove_where(&self, pred: impl Fn(&T) -> bool) -> Vec<Arc<T>> {
        let mut guard = self.map();
        let Some(m) = guard.as_mut() else {
            return Vec::new();
        };
        let keys: Vec<usize> = m.iter().filter(|(_, v)| pred(v)).map(|(k, _)| *k).collect();
        keys.iter().filter_map(|k| m.remove(k)).collect()
    }
}

/// Counts asynchronous requests in flight on a handle, so Wait and Close can drain them.
/// Requests belong to the process that started them: a forked child starts from zero, since
/// the parent's requests never complete in the child (their threads were not copied).
#[derive(Default)]
pub struct Pending {
    /// (process id, requests in flight in that process).
    count: Mutex<(u32, usize)>,
    idle: Condvar,
}

impl Pending {
    fn counter(&self) -> std::sync::MutexGuard<'_, (u32, usize)> {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if n.0 != pid {
            *n = (pid, 0);
        }
        n
    }

    /// One more request in flight.
    pub fn begin(&self) {
        self.counter().1 += 1;
    }

    /// One request finished.
    pub fn end(&self) {
        let mut n = self.counter();
        n.1 = n.1.saturating_sub(1);
        if n.1 == 0 {
            self.idle.notify_all();
        }
    }

    /// Blocks until no request is in flight.
    pub fn wait_idle(&self) {
        let mut n = self.counter();
        while n.1 > 0 {
            n = self.idle.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// What GetConnectParams gives back of a remote connection's params.
pub struct RemoteParams {
    /// `serverName` as given.
    pub server_name: String,
    /// `port` as given.
    pub port: u32,
}

/// A connection: local (files) or remote (an NBD server).
pub struct Connection {
    /// Where its disks are reached.
    pub reach: crate::Connection,
    /// ConnectEx's readOnly: every disk opened through it is read-only.
    pub read_only: bool,
    /// The params of a remote connection, for GetConnectParams.
    pub remote: Option<RemoteParams>,
}

/// An open disk handle.
pub struct DiskHandle {
    /// The disk: a local chain or a remote export.
    pub disk: Disk,
    /// Token of the connection it was opened through.
    pub connection: usize,
    /// Asynchronous requests in flight (shared with their completions, which hold this and
    /// not the handle, so Close can take the disk back once they finished).
    pub pending: Arc<Pending>,
    /// The change id given to OpenEx, which QueryChangedAreas compares against.
    pub change_id: Option<crate::ChangeId>,
}

/// How long Close and Attach wait for other threads to leave their calls on the handle.
const LEAVE_WAIT: Duration = Duration::from_secs(5);

/// The handle taken out of `DISKS`, once no other thread is inside a call on it. Another
/// thread there is a caller's race; it usually leaves within microseconds (a call that just
/// started an asynchronous request, a Wait that just saw it finish), and before the C ABI used
/// the facade the engine's locks made Close and Attach wait for its disk work anyway. The wait
/// is bounded (`LEAVE_WAIT`): a call that stays inside (a progress callback that blocks, a
/// thread of the parent in a forked child) gets the handle back as `Err`.
pub fn sole_owner(mut h: Arc<DiskHandle>) -> std::result::Result<DiskHandle, Arc<DiskHandle>> {
    let deadline = Instant::now() + LEAVE_WAIT;
    let mut pause = Duration::from_micros(50);
    loop {
        match Arc::try_unwrap(h) {
            Ok(h) => return Ok(h),
            Err(shared) if Instant::now() >= deadline => return Err(shared),
            Err(shared) => {
                h = shared;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
        }
    }
}

/// Closes a handle taken out of `DISKS`, after its asynchronous requests finished and other
/// threads left their calls on it (`sole_owner`), so Close returns with the disk closed and
/// its error reported. If a call stays inside past the wait, the disk is flushed now (durable,
/// error reported) and released when that call returns.
pub fn close_disk(h: Arc<DiskHandle>) -> Result<()> {
    h.pending.wait_idle();
    match sole_owner(h) {
        Ok(h) => h.disk.close(),
        Err(shared) => {
            crate::log_warning(format!(
                "closing a disk handle that another thread is still using after {} s: \
                 flushed now, released when that call returns",
                LEAVE_WAIT.as_secs()
            ));
            shared.disk.flush()
        }
    }
}

/// Live connections.
pub static CONNECTIONS: Registry<Connection> = Registry::new("connection");

/// The live connection behind a C connection argument. VDDK requires a connection for every
/// call that takes one, so NULL is refused like a disconnected, foreign (say, a disk handle) or
/// garbage value: VIX_E_INVALID_ARG, checked before anything else is looked at.
pub fn connection(token: usize) -> Result<Arc<Connection>> {
    CONNECTIONS.get(token)
}

/// Like `connection`, for calls that name local files (Create, Clone, Grow, Unlink,
/// CheckRepair, …): a remote connection is refused with VIX_E_NOT_SUPPORTED.
pub fn local_connection(token: usize, call: &str) -> Result<Arc<Connection>> {
    let c = connection(token)?;
    c.reach.require_local(call)?;
    Ok(c)
}

/// Like `local_connection`, for calls that change disks: a read-only connection is refused.
pub fn writable_connection(token: usize, call: &str) -> Result<Arc<Connection>> {
    let c = local_connection(token, call)?;
    if c.read_only {
        return Err(Error::ReadOnly("the connection is read-only".into()));
    }
    Ok(c)
}
/// Live disks.
pub static DISKS: Registry<DiskHandle> = Registry::new("disk");

/// Disk handles that Attach consumed: closing one later is a harmless no-op (VDDK ≥ 6.7.1).
static RETIRED: Mutex<Option<std::collections::HashSet<usize>>> = Mutex::new(None);

/// Marks a disk handle as consumed by Attach.
pub fn retire(token: usize) {
    RETIRED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Default::default)
        .insert(token);
}

/// True (once) if `token` was consumed by Attach.
pub fn take_retired(token: usize) -> bool {
    RETIRED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .is_some_and(|s| s.remove(&token))
}
