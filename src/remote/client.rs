//! One libnbd connection: the handshake (bounded by the timeout, in the caller's thread), then
//! registration with the poller, which drives it from then on; commands are sent from any
//! thread (libnbd locks the handle).

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use super::ops::{ConnState, Death};
use super::poller::{self, Pollable};
use super::settings::{RemoteSettings, psk_identity};
use super::sys::{self, Direction, Handle, LibError, TlsMode};
use super::target::{Endpoint, Target, TlsPolicy};
use crate::error::{Error, Result};
use crate::log;

/// A connected libnbd handle.
pub struct Conn {
    h: Handle,
    /// A duplicate of the socket, so a hung connection can be shut down from any thread
    /// without racing libnbd closing (and the kernel reusing) its own descriptor.
    kill_fd: Option<OwnedFd>,
    pub state: Arc<ConnState>,
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidArg(format!("{what} contains a NUL byte")))
}

/// Turns a connect or handshake failure (libnbd's message and errno) into the error its
/// cause deserves.
fn classify(text: &str, errno: i32, target: &str) -> Error {
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
        let target_name = format!("{} export {:?}", req.target.describe(), req.export);
        let settings = req.settings.overridden_by(&req.target.tls_overrides);
        let h = Handle::new()?;
        let state = Arc::new(ConnState::new(target_name.clone(), settings.timeout));
        let mut conn = Conn {
            h,
            kill_fd: None,
            state,
        };
        let info = conn.handshake(req, &settings)?;
        match conn.h.dup_socket() {
            Ok(fd) => conn.kill_fd = Some(fd),
            Err(e) => {
                // Without our own descriptor a hung server could not be cut off: a timeout
                // would not end a synchronous call. Refuse the connection rather than risk a
                // hang.
                return Err(Error::RemoteConnectionLost(format!(
                    "{}: cannot take a descriptor of the connection's socket: {e}",
                    conn.state.name
                )));
            }
        }
        let conn = Arc::new(conn);
        if !poller::register(Arc::clone(&conn) as Arc<dyn Pollable>) {
            return Err(Error::NotSupported(
                "cannot start the NBD poller thread".into(),
            ));
        }
        Ok((conn, info))
    }

    fn check(&self, rc: std::result::Result<(), LibError>, what: &str) -> Result<()> {
        rc.map_err(|e| Error::InvalidArg(format!("{what}: {}", e.text)))
    }

    fn configure(&self, req: &OpenRequest<'_>, settings: &RemoteSettings) -> Result<()> {
        let h = &self.h;
        let export = cstring(req.export, "export name")?;
        self.check(h.set_export_name(&export), "export name")?;
        // Our buffers are the caller's and are overwritten anyway: skip libnbd's memset.
        self.check(h.skip_pread_initialize(), "pread_initialize")?;
        let mut contexts = vec!["base:allocation".to_string()];
        contexts.extend(req.extra_contexts.iter().cloned());
        for ctx in &contexts {
            let c = cstring(ctx, "meta context")?;
            self.check(h.add_meta_context(&c), "meta context")?;
        }
        let tls = match req.target.tls {
            TlsPolicy::Off => TlsMode::Disable,
            TlsPolicy::Allow => TlsMode::Allow,
            TlsPolicy::Require => TlsMode::Require,
        };
        self.check(h.set_tls(tls), "TLS")?;
        if tls == TlsMode::Disable {
            return Ok(());
        }
        if let Some(psk) = &settings.tls_psk_file {
            let text = std::fs::read_to_string(psk).map_err(|e| {
                Error::RemoteTls(format!("cannot read PSK file {}: {e}", psk.display()))
            })?;
            let path = cstring(&psk.to_string_lossy(), "PSK file")?;
            self.check(h.set_tls_psk_file(&path), "PSK file")?;
            if let Some(id) = psk_identity(settings.tls_username.as_deref(), req.params_user, &text)
            {
                let id = cstring(&id, "PSK identity")?;
                self.check(h.set_tls_username(&id), "PSK identity")?;
            }
        } else if let Some(dir) = &settings.tls_certificates {
            let dir = cstring(&dir.to_string_lossy(), "certificate directory")?;
            self.check(h.set_tls_certificates(&dir), "certificate directory")?;
        }
        self.check(
            h.set_tls_verify_peer(settings.tls_verify_peer),
            "TLS peer verification",
        )?;
        Ok(())
    }

    fn fail(&self) -> Error {
        let e = self.h.last_error();
        classify(&e.text, e.errno, &self.state.name)
    }

    /// Connects and negotiates within the timeout, in this thread.
    fn handshake(&self, req: &OpenRequest<'_>, settings: &RemoteSettings) -> Result<ExportInfo> {
        let h = &self.h;
        self.configure(req, settings)?;
        let started = match &req.target.endpoint {
            Endpoint::Unix { socket } => {
                let s = cstring(&socket.to_string_lossy(), "socket path")?;
                h.connect_unix(&s)
            }
            Endpoint::Tcp { host, port } => {
                let host = cstring(host, "host")?;
                let port = cstring(&port.to_string(), "port")?;
                h.connect_tcp(&host, &port)
            }
        };
        if started.is_err() {
            return Err(self.fail());
        }
        let deadline = Instant::now() + settings.timeout;
        loop {
            if h.is_ready() {
                break;
            }
            if h.is_dead() || h.is_closed() {
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
            let (fd, dir) = h.fd_and_direction();
            let mut p = [poll_fd(fd, dir)];
            let wait_ms = left.as_millis().clamp(1, 1000) as i32;
            if sys::poll(&mut p, wait_ms) <= 0 {
                continue;
            }
            let notified =
                if p[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && dir.read {
                    h.notify_read()
                } else {
                    h.notify_write()
                };
            if notified.is_err() {
                return Err(self.fail());
            }
        }
        let mut contexts = vec!["base:allocation".to_string()];
        contexts.extend(req.extra_contexts.iter().cloned());
        contexts.retain(|ctx| CString::new(ctx.as_str()).is_ok_and(|c| h.can_meta_context(&c)));
        let size = h.size();
        if size < 0 {
            return Err(self.fail());
        }
        let (min, max) = h.block_sizes();
        Ok(ExportInfo {
            size: size as u64,
            read_only: h.is_read_only(),
            can_flush: h.can_flush(),
            tls: h.tls_negotiated(),
            server_max_block: max,
            server_min_block: min,
            contexts,
        })
    }

    /// Whether this process inherited the connection through fork (then it is unusable here).
    pub fn inherited(&self) -> bool {
        self.h.inherited()
    }

    /// Refuses use of a connection inherited through fork, without touching it.
    pub fn check_owner(&self) -> Result<()> {
        if !self.inherited() {
            return Ok(());
        }
        Err(Error::RemoteConnectionLost(format!(
            "{}: connected by process {}; a forked child must open the disk again",
            self.state.name,
            self.h.creator()
        )))
    }

    /// The libnbd handle, for command submission in `disk`.
    pub fn handle(&self) -> &Handle {
        &self.h
    }

    /// Whether libnbd wants to write (a request did not go out whole).
    pub fn wants_write(&self) -> bool {
        self.h.fd_and_direction().1.write
    }

    /// Whether the connection is over (dead or closed): the poller drops it.
    pub fn is_finished(&self) -> bool {
        self.h.is_dead() || self.h.is_closed()
    }

    fn after_notify(&self, rc: std::result::Result<(), LibError>) {
        if rc.is_ok() && !self.is_finished() {
            return;
        }
        if self.h.is_closed() && self.state.is_closing() {
            return; // the session ended as asked
        }
        let why = format!("{}: {}", self.state.name, self.h.last_error().text);
        if self.state.mark_dead(Death::Lost(why.clone())) && !self.state.is_closing() {
            log::warn(format!("NBD connection lost: {why}"));
        }
    }

    /// Declares the connection dead and breaks its socket, so libnbd fails every command in
    /// flight (their callbacks run, buffers are released) and nothing waits forever.
    pub fn kill(&self, why: Death) {
        if self.state.mark_dead(why.clone()) {
            log::warn(format!("NBD: {}", why.to_error()));
        }
        if let Some(fd) = &self.kill_fd
            && !self.inherited()
        {
            sys::shutdown(fd);
        }
        poller::wake();
    }

    /// Asks the server to end the session after the commands in flight; the poller finishes
    /// it and drops the handle.
    pub fn disconnect(&self) {
        if self.inherited() || !self.state.mark_closing() || self.state.death().is_some() {
            return;
        }
        self.h.disconnect();
        poller::wake();
    }
}

/// The pollfd for waiting on `fd` in the directions libnbd wants.
fn poll_fd(fd: RawFd, dir: Direction) -> sys::PollFd {
    let mut events = 0;
    if dir.read {
        events |= libc::POLLIN;
    }
    if dir.write {
        events |= libc::POLLOUT;
    }
    sys::PollFd {
        fd,
        events,
        revents: 0,
    }
}

impl Pollable for Conn {
    fn poll_fd(&self) -> sys::PollFd {
        let (fd, dir) = self.h.fd_and_direction();
        // A negative fd is ignored by poll (the handle is closing).
        poll_fd(fd, dir)
    }

    fn is_finished(&self) -> bool {
        Conn::is_finished(self)
    }

    fn notify_read(&self) {
        self.after_notify(self.h.notify_read());
    }

    fn notify_write(&self) {
        self.after_notify(self.h.notify_write());
    }

    fn check_deadline(&self, now: Instant) {
        if self.state.overdue(now) {
            let why = format!(
                "{}: no answer within {} s",
                self.state.name,
                self.state.timeout.as_secs()
            );
            self.kill(Death::Timeout(why));
        }
    }
}
