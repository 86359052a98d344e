//! One libnbd connection: the handshake (bounded by the timeout, in the caller's thread), then
//! registration with the poller, which drives it from then on; commands are sent from any
//! thread (libnbd locks the handle).

use std::ffi::{CString, c_int, c_uint};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::log;
use crate::remote::settings::{RemoteSettings, psk_identity};
use crate::remote::target::{Endpoint, Target, TlsPolicy};

use super::libnbd::*;
use super::ops::{ConnState, Death};
use super::poller;

/// A connected libnbd handle.
pub struct Conn {
    pub lib: &'static Lib,
    h: *mut nbd_handle,
    /// A duplicate of the socket, so a hung connection can be shut down from any thread
    /// without racing libnbd closing (and the kernel reusing) its own descriptor.
    kill_fd: RawFd,
    pub state: Arc<ConnState>,
    /// The process that connected. A forked child inherits the handle and the socket but not
    /// the poller driving them, and shares the socket with its parent: it must neither send
    /// on it, nor shut it down, nor touch a libnbd lock that a parent thread may have held at
    /// the fork.
    owner: u32,
}

// SAFETY: libnbd handles may be used from several threads at once (libnbd locks each call);
// `kill_fd` is ours and only shut down or closed.
unsafe impl Send for Conn {}
// SAFETY: as above.
unsafe impl Sync for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: `h` came from nbd_create and is closed once, here, when no thread can use it
        // any more (this is the last reference); `kill_fd` is our dup, closed once. In a forked
        // child the handle is leaked: closing it could wait on a lock the parent held at the
        // fork, or say goodbye over the parent's session.
        unsafe {
            if !self.inherited() {
                (self.lib.close)(self.h);
            }
            if self.kill_fd >= 0 {
                libc::close(self.kill_fd);
            }
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidArg(format!("{what} contains a NUL byte")))
}

/// Turns a connect or handshake failure (libnbd's message and errno) into the error its
/// cause deserves.
fn classify(text: &str, errno: c_int, target: &str) -> Error {
    let lower = text.to_ascii_lowercase();
    let msg = format!("{target}: {text}");
    if lower.contains("tls") || lower.contains("gnutls") || lower.contains("psk") {
        return Error::RemoteTls(msg);
    }
    if lower.contains("no export")
        || lower.contains("unknown export")
        || lower.contains("not present")
    {
        return Error::RemoteExportNotFound(msg);
    }
    if lower.contains("handshake") {
        return match errno {
            libc::ECONNRESET | libc::EPIPE | libc::ENOTCONN => Error::RemoteConnectionLost(msg),
            libc::ENOENT => Error::RemoteExportNotFound(msg),
            _ => Error::RemoteProtocol(msg),
        };
    }
    match errno {
        libc::ECONNREFUSED
        | libc::EHOSTUNREACH
        | libc::ENETUNREACH
        | libc::EADDRNOTAVAIL
        | libc::ETIMEDOUT
        | libc::ENOENT
        | libc::ENOTSOCK
        | libc::EACCES => Error::RemoteUnreachable(msg),
        libc::ECONNRESET | libc::EPIPE | libc::ENOTCONN => Error::RemoteConnectionLost(msg),
        _ if lower.contains("getaddrinfo") || lower.contains("connect") => {
            Error::RemoteUnreachable(msg)
        }
        _ => Error::RemoteProtocol(msg),
    }
}

/// What Open asks for.
pub struct OpenRequest<'a> {
    pub target: &'a Target,
    pub settings: &'a RemoteSettings,
    pub export: &'a str,
    /// The connect params' user name (a PSK identity candidate).
    pub params_user: Option<&'a str>,
    /// Meta contexts to negotiate besides `base:allocation`.
    pub extra_contexts: Vec<String>,
}

/// What the server told us about the export.
#[derive(Debug, Clone)]
pub struct ExportInfo {
    pub size: u64,
    pub read_only: bool,
    pub can_flush: bool,
    pub tls: bool,
    pub server_max_block: Option<u64>,
    /// The server's minimum block size (None: not advertised); libnbd refuses requests not
    /// aligned to it.
    pub server_min_block: Option<u64>,
    /// Negotiated meta contexts among `base:allocation` and the extras asked for.
    pub contexts: Vec<String>,
}

impl Conn {
    /// Connects and negotiates; on success the poller drives the connection.
    pub fn open(req: &OpenRequest<'_>) -> Result<(Arc<Conn>, ExportInfo)> {
        let lib = lib()?;
        let target_name = format!("{} export {:?}", req.target.describe(), req.export);
        let settings = req.settings.overridden_by(&req.target.tls_overrides);
        // SAFETY: nbd_create has no preconditions; NULL is handled.
        let h = unsafe { (lib.create)() };
        if h.is_null() {
            let (text, _) = lib.last_error();
            return Err(Error::RemoteProtocol(format!("nbd_create: {text}")));
        }
        let state = Arc::new(ConnState::new(target_name.clone(), settings.timeout));
        let mut conn = Conn {
            lib,
            h,
            kill_fd: -1,
            state,
            owner: std::process::id(),
        };
        let info = conn.handshake(req, &settings)?;
        // SAFETY: the handle is connected; nbd_aio_get_fd returns its socket or -1.
        let fd = unsafe { (lib.aio_get_fd)(h) };
        if fd >= 0 {
            // SAFETY: `fd` is libnbd's live socket; dup gives us our own descriptor for it.
            conn.kill_fd = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        }
        if conn.kill_fd < 0 {
            // Without our own descriptor a hung server could not be cut off: a timeout would
            // not end a synchronous call. Refuse the connection rather than risk a hang.
            return Err(Error::RemoteConnectionLost(format!(
                "{}: cannot take a descriptor of the connection's socket: {}",
                conn.state.name,
                std::io::Error::last_os_error()
            )));
        }
        let conn = Arc::new(conn);
        if !poller::register(Arc::clone(&conn)) {
            return Err(Error::NotSupported(
                "cannot start the NBD poller thread".into(),
            ));
        }
        Ok((conn, info))
    }

    fn check(&self, rc: c_int, what: &str) -> Result<()> {
        if rc == -1 {
            let (text, _) = self.lib.last_error();
            return Err(Error::InvalidArg(format!("{what}: {text}")));
        }
        Ok(())
    }

    fn configure(&self, req: &OpenRequest<'_>, settings: &RemoteSettings) -> Result<()> {
        let (lib, h) = (self.lib, self.h);
        let export = cstring(req.export, "export name")?;
        // SAFETY (every call in this function): `h` is a fresh handle in the created state
        // and every string argument is a live NUL-terminated CString; libnbd copies them.
        self.check(
            unsafe { (lib.set_export_name)(h, export.as_ptr()) },
            "export name",
        )?;
        // Our buffers are the caller's and are overwritten anyway: skip libnbd's memset
        // (libnbd 1.12+; older ones never do it).
        if let Some(set_pread_initialize) = lib.set_pread_initialize {
            self.check(
                unsafe { set_pread_initialize(h, false) },
                "pread_initialize",
            )?;
        }
        let mut contexts = vec!["base:allocation".to_string()];
        contexts.extend(req.extra_contexts.iter().cloned());
        for ctx in &contexts {
            let c = cstring(ctx, "meta context")?;
            self.check(
                unsafe { (lib.add_meta_context)(h, c.as_ptr()) },
                "meta context",
            )?;
        }
        let tls = match req.target.tls {
            TlsPolicy::Off => LIBNBD_TLS_DISABLE,
            TlsPolicy::Allow => LIBNBD_TLS_ALLOW,
            TlsPolicy::Require => LIBNBD_TLS_REQUIRE,
        };
        self.check(unsafe { (lib.set_tls)(h, tls) }, "TLS")?;
        if tls == LIBNBD_TLS_DISABLE {
            return Ok(());
        }
        if let Some(psk) = &settings.tls_psk_file {
            let text = std::fs::read_to_string(psk).map_err(|e| {
                Error::RemoteTls(format!("cannot read PSK file {}: {e}", psk.display()))
            })?;
            let path = cstring(&psk.to_string_lossy(), "PSK file")?;
            self.check(
                unsafe { (lib.set_tls_psk_file)(h, path.as_ptr()) },
                "PSK file",
            )?;
            if let Some(id) = psk_identity(settings.tls_username.as_deref(), req.params_user, &text)
            {
                let id = cstring(&id, "PSK identity")?;
                self.check(
                    unsafe { (lib.set_tls_username)(h, id.as_ptr()) },
                    "PSK identity",
                )?;
            }
        } else if let Some(dir) = &settings.tls_certificates {
            let dir = cstring(&dir.to_string_lossy(), "certificate directory")?;
            self.check(
                unsafe { (lib.set_tls_certificates)(h, dir.as_ptr()) },
                "certificate directory",
            )?;
        }
        self.check(
            unsafe { (lib.set_tls_verify_peer)(h, settings.tls_verify_peer) },
            "TLS peer verification",
        )?;
        Ok(())
    }

    fn fail(&self) -> Error {
        let (text, errno) = self.lib.last_error();
        classify(&text, errno, &self.state.name)
    }

    /// Connects and negotiates within the timeout, in this thread.
    fn handshake(&self, req: &OpenRequest<'_>, settings: &RemoteSettings) -> Result<ExportInfo> {
        let (lib, h) = (self.lib, self.h);
        self.configure(req, settings)?;
        let rc = match &req.target.endpoint {
            Endpoint::Unix { socket } => {
                let s = cstring(&socket.to_string_lossy(), "socket path")?;
                // SAFETY: `h` is configured and not yet connected; `s` is a live CString.
                unsafe { (lib.aio_connect_unix)(h, s.as_ptr()) }
            }
            Endpoint::Tcp { host, port } => {
                let host = cstring(host, "host")?;
                let port = cstring(&port.to_string(), "port")?;
                // SAFETY: as above.
                unsafe { (lib.aio_connect_tcp)(h, host.as_ptr(), port.as_ptr()) }
            }
        };
        if rc == -1 {
            return Err(self.fail());
        }
        let deadline = Instant::now() + settings.timeout;
        loop {
            // SAFETY (state queries and notifications below): `h` is a live handle that no
            // other thread uses yet.
            if unsafe { (lib.aio_is_ready)(h) } == 1 {
                break;
            }
            if unsafe { (lib.aio_is_dead)(h) } == 1 || unsafe { (lib.aio_is_closed)(h) } == 1 {
                return Err(Error::RemoteProtocol(format!(
                    "{}: the server closed the connection during the handshake",
                    self.state.name
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::RemoteTimeout(format!(
                    "{}: no handshake within {} s",
                    self.state.name,
                    settings.timeout.as_secs()
                )));
            }
            let (fd, dir) = self.fd_and_direction();
            let mut p = libc::pollfd {
                fd,
                events: 0,
                revents: 0,
            };
            if dir & LIBNBD_AIO_DIRECTION_READ != 0 {
                p.events |= libc::POLLIN;
            }
            if dir & LIBNBD_AIO_DIRECTION_WRITE != 0 {
                p.events |= libc::POLLOUT;
            }
            let wait_ms = left.as_millis().clamp(1, 1000) as c_int;
            // SAFETY: `p` is one live pollfd.
            let n = unsafe { libc::poll(&mut p, 1, wait_ms) };
            if n <= 0 {
                continue;
            }
            let rc = if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                && dir & LIBNBD_AIO_DIRECTION_READ != 0
            {
                unsafe { (lib.aio_notify_read)(h) }
            } else {
                unsafe { (lib.aio_notify_write)(h) }
            };
            if rc == -1 {
                return Err(self.fail());
            }
        }
        let c = |name: &str| -> bool {
            let Ok(cn) = CString::new(name) else {
                return false;
            };
            // SAFETY: `h` is ready; `cn` is a live CString.
            unsafe { (lib.can_meta_context)(h, cn.as_ptr()) == 1 }
        };
        let mut contexts = vec!["base:allocation".to_string()];
        contexts.extend(req.extra_contexts.iter().cloned());
        contexts.retain(|ctx| c(ctx));
        // SAFETY: `h` is ready; these are plain queries.
        let (size, ro, flush, tls, max, min) = unsafe {
            (
                (lib.get_size)(h),
                (lib.is_read_only)(h),
                (lib.can_flush)(h),
                (lib.get_tls_negotiated)(h),
                (lib.get_block_size)(h, LIBNBD_SIZE_MAXIMUM),
                (lib.get_block_size)(h, LIBNBD_SIZE_MINIMUM),
            )
        };
        if size < 0 {
            return Err(self.fail());
        }
        Ok(ExportInfo {
            size: size as u64,
            read_only: ro == 1,
            can_flush: flush == 1,
            tls: tls == 1,
            server_max_block: u64::try_from(max).ok().filter(|&m| m > 0),
            server_min_block: u64::try_from(min).ok().filter(|&m| m > 0),
            contexts,
        })
    }

    /// Whether this process inherited the connection through fork (then it is unusable here).
    pub fn inherited(&self) -> bool {
        std::process::id() != self.owner
    }

    /// Refuses use of a connection inherited through fork, without touching it.
    pub fn check_owner(&self) -> Result<()> {
        if !self.inherited() {
            return Ok(());
        }
        Err(Error::RemoteConnectionLost(format!(
            "{}: connected by process {}; a forked child must open the disk again",
            self.state.name, self.owner
        )))
    }

    /// The socket and the directions libnbd waits for (-1 and 0 once it is gone).
    pub fn fd_and_direction(&self) -> (RawFd, c_uint) {
        // SAFETY: `h` is live for as long as `self`; these calls take libnbd's lock.
        unsafe {
            let fd = (self.lib.aio_get_fd)(self.h);
            if fd < 0 {
                return (-1, 0);
            }
            (fd, (self.lib.aio_get_direction)(self.h))
        }
    }

    /// Whether the connection is over (dead or closed): the poller drops it.
    pub fn is_finished(&self) -> bool {
        // SAFETY: `h` is live for as long as `self`.
        unsafe { (self.lib.aio_is_dead)(self.h) == 1 || (self.lib.aio_is_closed)(self.h) == 1 }
    }

    fn after_notify(&self, rc: c_int) {
        if rc != -1 && !self.is_finished() {
            return;
        }
        // SAFETY: `h` is live for as long as `self`.
        let closed = unsafe { (self.lib.aio_is_closed)(self.h) } == 1;
        if closed && self.state.is_closing() {
            return; // the session ended as asked
        }
        let (text, _) = self.lib.last_error();
        let why = format!("{}: {text}", self.state.name);
        if self.state.mark_dead(Death::Lost(why.clone())) && !self.state.is_closing() {
            log::warn(format!("NBD connection lost: {why}"));
        }
    }

    /// The socket is readable (or hung up): let libnbd read.
    pub fn notify_read(&self) {
        // SAFETY: `h` is live; called by the poller only.
        let rc = unsafe { (self.lib.aio_notify_read)(self.h) };
        self.after_notify(rc);
    }

    /// The socket is writable: let libnbd write.
    pub fn notify_write(&self) {
        // SAFETY: `h` is live; called by the poller only.
        let rc = unsafe { (self.lib.aio_notify_write)(self.h) };
        self.after_notify(rc);
    }

    /// Declares the connection dead and breaks its socket, so libnbd fails every command in
    /// flight (their callbacks run, buffers are released) and nothing waits forever.
    pub fn kill(&self, why: Death) {
        if self.state.mark_dead(why.clone()) {
            log::warn(format!("NBD: {}", why.to_error()));
        }
        if self.kill_fd >= 0 && !self.inherited() {
            // SAFETY: `kill_fd` is our own duplicate of the socket, open until drop.
            unsafe { libc::shutdown(self.kill_fd, libc::SHUT_RDWR) };
        }
        poller::wake();
    }

    /// The raw handle, for command submission in `disk`.
    pub fn handle(&self) -> *mut nbd_handle {
        self.h
    }

    /// Asks the server to end the session after the commands in flight; the poller finishes
    /// it and drops the handle.
    pub fn disconnect(&self) {
        if self.inherited() || !self.state.mark_closing() || self.state.death().is_some() {
            return;
        }
        // SAFETY: `h` is live; aio_disconnect only queues NBD_CMD_DISC.
        unsafe { (self.lib.aio_disconnect)(self.h, 0) };
        poller::wake();
    }
}
