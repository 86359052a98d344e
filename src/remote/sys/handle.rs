//! One libnbd handle behind a safe type: configuration, the non-blocking connect and
//! handshake steps, state queries, and commands whose completions are Rust values
//! (`Completion`, `ExtentSink`) that libnbd owns until it frees them.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;

use super::bindings::*;
use super::buf::{IoBuf, Lease};
use crate::error::{Error, Result};

/// libnbd's last error on the calling thread: its message and errno (0 if none).
#[derive(Debug, Clone)]
pub struct LibError {
    pub text: String,
    pub errno: i32,
}

/// How TLS is negotiated (`LIBNBD_TLS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Allow,
    Require,
}

/// What libnbd waits for on its socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Direction {
    pub read: bool,
    pub write: bool,
}

/// What a command reports when it completes. libnbd owns the value from submission until it
/// frees the command: `complete` runs at most once (not for a command dropped unanswered, on a
/// dead connection or at close), and the value is dropped exactly once, after it.
pub trait Completion: Send + 'static {
    /// The command finished; `errno` is 0 on success.
    fn complete(&mut self, errno: i32);
}

/// Where a block-status command's extents go: one call per reply chunk and meta context, with
/// the chunk's first byte and its (length, flags) entries flattened.
pub trait ExtentSink: Send + Sync + 'static {
    fn extents(&self, context: &CStr, offset: u64, entries: &[u32]);
}

/// A libnbd handle. Usable from several threads at once (libnbd locks each call). Closed when
/// dropped, except in a forked child: closing there could wait on a lock a parent thread held
/// at the fork, or end the parent's session.
pub struct Handle {
    lib: &'static Lib,
    h: NonNull<nbd_handle>,
    creator: u32,
}

// SAFETY: libnbd handles may be used from any thread, concurrently (libnbd locks each call).
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.inherited() {
            // SAFETY: `h` came from nbd_create and is closed once, here, when no thread can
            // use it any more (this is its owner's drop).
            unsafe { (self.lib.close)(self.h.as_ptr()) };
        }
    }
}

/// The command's user data: the completion and the memory lease it holds.
struct Command<C> {
    done: C,
    _lease: Lease,
}

unsafe extern "C" fn on_complete<C: Completion>(
    user_data: *mut c_void,
    error: *mut c_int,
) -> c_int {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `user_data` is the Box<Command<C>> leaked by `completion`; libnbd passes it
        // back until it calls `on_free`, never concurrently with it. `error` points at
        // libnbd's int for this command.
        let (cmd, errno) = unsafe { (&mut *user_data.cast::<Command<C>>(), *error) };
        cmd.done.complete(errno);
    }));
    // 1: the command is retired at once (nobody calls nbd_aio_command_completed).
    1
}

unsafe extern "C" fn on_free<C: Completion>(user_data: *mut c_void) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `user_data` is the Box<Command<C>> leaked by `completion`; libnbd calls this
        // exactly once, after which it never uses the pointer again.
        drop(unsafe { Box::from_raw(user_data.cast::<Command<C>>()) });
    }));
}

/// The callback struct that hands `done` (and `lease`) to libnbd; libnbd always calls
/// `on_free`, also when the submission fails.
fn completion<C: Completion>(done: C, lease: Lease) -> nbd_completion_callback {
    nbd_completion_callback {
        callback: Some(on_complete::<C>),
        user_data: Box::into_raw(Box::new(Command {
            done,
            _lease: lease,
        }))
        .cast(),
        free: Some(on_free::<C>),
    }
}

unsafe extern "C" fn on_extents<S: ExtentSink>(
    user_data: *mut c_void,
    metacontext: *const c_char,
    offset: u64,
    entries: *mut u32,
    nr_entries: usize,
    _error: *mut c_int,
) -> c_int {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `user_data` is the Box<Arc<S>> made in `block_status`, live until
        // `free_extents`; `metacontext` is a NUL-terminated name and `entries` holds
        // `nr_entries` u32s, both valid for this call (libnbd's contract).
        let (sink, name, raw) = unsafe {
            (
                &*user_data.cast::<Arc<S>>(),
                CStr::from_ptr(metacontext),
                if nr_entries == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(entries, nr_entries)
                },
            )
        };
        sink.extents(name, offset, raw);
    }));
    0
}

unsafe extern "C" fn free_extents<S: ExtentSink>(user_data: *mut c_void) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `user_data` is the Box<Arc<S>> made in `block_status`; libnbd frees it
        // exactly once.
        drop(unsafe { Box::from_raw(user_data.cast::<Arc<S>>()) });
    }));
}

impl Handle {
    /// A new handle (loads libnbd on first use).
    pub fn new() -> Result<Handle> {
        let lib = lib()?;
        // SAFETY: nbd_create has no preconditions; NULL is handled.
        let h = unsafe { (lib.create)() };
        match NonNull::new(h) {
            Some(h) => Ok(Handle {
                lib,
                h,
                creator: std::process::id(),
            }),
            None => Err(Error::RemoteProtocol(format!(
                "nbd_create: {}",
                lib.last_error().0
            ))),
        }
    }

    fn h(&self) -> *mut nbd_handle {
        self.h.as_ptr()
    }

    /// libnbd's last error on this thread.
    pub fn last_error(&self) -> LibError {
        let (text, errno) = self.lib.last_error();
        LibError { text, errno }
    }

    fn check(&self, rc: c_int) -> std::result::Result<(), LibError> {
        if rc == -1 {
            Err(self.last_error())
        } else {
            Ok(())
        }
    }

    /// Whether this process inherited the handle through fork (then it must not be used).
    pub fn inherited(&self) -> bool {
        std::process::id() != self.creator
    }

    /// The process that created the handle.
    pub fn creator(&self) -> u32 {
        self.creator
    }

    // Configuration, before connecting. SAFETY (every call below): `h` is live for as long as
    // `self`, and every string is a NUL-terminated CStr that libnbd copies.

    pub fn set_export_name(&self, name: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.set_export_name)(self.h(), name.as_ptr()) })
    }

    /// Skips libnbd's zeroing of read buffers where libnbd can (1.12+; older ones never do it).
    pub fn skip_pread_initialize(&self) -> std::result::Result<(), LibError> {
        match self.lib.set_pread_initialize {
            // SAFETY: see above.
            Some(f) => self.check(unsafe { f(self.h(), false) }),
            None => Ok(()),
        }
    }

    pub fn add_meta_context(&self, name: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.add_meta_context)(self.h(), name.as_ptr()) })
    }

    pub fn set_tls(&self, mode: TlsMode) -> std::result::Result<(), LibError> {
        let mode = match mode {
            TlsMode::Disable => LIBNBD_TLS_DISABLE,
            TlsMode::Allow => LIBNBD_TLS_ALLOW,
            TlsMode::Require => LIBNBD_TLS_REQUIRE,
        };
        // SAFETY: see above.
        self.check(unsafe { (self.lib.set_tls)(self.h(), mode) })
    }

    pub fn set_tls_psk_file(&self, path: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.set_tls_psk_file)(self.h(), path.as_ptr()) })
    }

    pub fn set_tls_username(&self, name: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.set_tls_username)(self.h(), name.as_ptr()) })
    }

    pub fn set_tls_certificates(&self, dir: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.set_tls_certificates)(self.h(), dir.as_ptr()) })
    }

    pub fn set_tls_verify_peer(&self, verify: bool) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.set_tls_verify_peer)(self.h(), verify) })
    }

    /// Starts connecting to a unix socket (the handshake is driven by `notify_*`).
    pub fn connect_unix(&self, socket: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.aio_connect_unix)(self.h(), socket.as_ptr()) })
    }

    /// Starts connecting to a TCP host and port.
    pub fn connect_tcp(&self, host: &CStr, port: &CStr) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.aio_connect_tcp)(self.h(), host.as_ptr(), port.as_ptr()) })
    }

    // State. SAFETY (every call below): `h` is live for as long as `self`; these calls take
    // libnbd's lock and touch no memory of ours.

    pub fn is_ready(&self) -> bool {
        // SAFETY: see above.
        unsafe { (self.lib.aio_is_ready)(self.h()) == 1 }
    }

    pub fn is_dead(&self) -> bool {
        // SAFETY: see above.
        unsafe { (self.lib.aio_is_dead)(self.h()) == 1 }
    }

    pub fn is_closed(&self) -> bool {
        // SAFETY: see above.
        unsafe { (self.lib.aio_is_closed)(self.h()) == 1 }
    }

    /// The socket and the directions libnbd waits for (-1 and none once it is gone).
    pub fn fd_and_direction(&self) -> (RawFd, Direction) {
        // SAFETY: see above.
        let fd = unsafe { (self.lib.aio_get_fd)(self.h()) };
        if fd < 0 {
            return (-1, Direction::default());
        }
        // SAFETY: see above.
        let dir = unsafe { (self.lib.aio_get_direction)(self.h()) };
        (
            fd,
            Direction {
                read: dir & LIBNBD_AIO_DIRECTION_READ != 0,
                write: dir & LIBNBD_AIO_DIRECTION_WRITE != 0,
            },
        )
    }

    /// The socket is readable (or hung up): lets libnbd read (completions may run here).
    pub fn notify_read(&self) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.aio_notify_read)(self.h()) })
    }

    /// The socket is writable: lets libnbd write.
    pub fn notify_write(&self) -> std::result::Result<(), LibError> {
        // SAFETY: see above.
        self.check(unsafe { (self.lib.aio_notify_write)(self.h()) })
    }

    /// Whether the server agreed to `context`.
    pub fn can_meta_context(&self, context: &CStr) -> bool {
        // SAFETY: see above; `context` is a live CStr.
        unsafe { (self.lib.can_meta_context)(self.h(), context.as_ptr()) == 1 }
    }

    /// The export's size in bytes (negative: libnbd's error).
    pub fn size(&self) -> i64 {
        // SAFETY: see above.
        unsafe { (self.lib.get_size)(self.h()) }
    }

    pub fn is_read_only(&self) -> bool {
        // SAFETY: see above.
        unsafe { (self.lib.is_read_only)(self.h()) == 1 }
    }

    pub fn can_flush(&self) -> bool {
        // SAFETY: see above.
        unsafe { (self.lib.can_flush)(self.h()) == 1 }
    }

    pub fn tls_negotiated(&self) -> bool {
        // SAFETY: see above.
        unsafe { (self.lib.get_tls_negotiated)(self.h()) == 1 }
    }

    /// The server's (minimum, maximum) block sizes, None where not advertised.
    pub fn block_sizes(&self) -> (Option<u64>, Option<u64>) {
        // SAFETY: see above.
        let (min, max) = unsafe {
            (
                (self.lib.get_block_size)(self.h(), LIBNBD_SIZE_MINIMUM),
                (self.lib.get_block_size)(self.h(), LIBNBD_SIZE_MAXIMUM),
            )
        };
        let some = |v: i64| u64::try_from(v).ok().filter(|&m| m > 0);
        (some(min), some(max))
    }

    /// Our own descriptor of the connection's socket (close-on-exec), so it can be shut down
    /// from any thread without racing libnbd closing (and the kernel reusing) its own.
    pub fn dup_socket(&self) -> io::Result<OwnedFd> {
        // SAFETY: see above.
        let fd = unsafe { (self.lib.aio_get_fd)(self.h()) };
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
        }
        // SAFETY: `fd` is libnbd's open socket, which it keeps open while connected; the
        // borrow lasts only for the duplication.
        unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
    }

    // Commands. Each returns false if libnbd refused it (then `last_error` says why); the
    // completion is freed (and dropped) either way, exactly once.

    /// Reads `n` bytes at `offset` into `buf[at..at + n]`.
    pub fn pread<C: Completion>(
        &self,
        buf: &IoBuf,
        at: usize,
        n: usize,
        offset: u64,
        done: C,
    ) -> bool {
        let (addr, lease) = buf.range(at, n, true);
        let cb = completion(done, lease);
        // SAFETY: `h` is live; `addr..addr+n` lies inside the writable buffer (checked by
        // `range`), which stays valid until libnbd frees the command: the lease makes a lent
        // slice wait for that, and a C caller's buffer is valid by its constructor's contract.
        // libnbd owns `cb`.
        unsafe { (self.lib.aio_pread)(self.h(), addr as *mut c_void, n, offset, cb, 0) != -1 }
    }

    /// Writes `buf[at..at + n]` at `offset`.
    pub fn pwrite<C: Completion>(
        &self,
        buf: &IoBuf,
        at: usize,
        n: usize,
        offset: u64,
        done: C,
    ) -> bool {
        let (addr, lease) = buf.range(at, n, false);
        let cb = completion(done, lease);
        // SAFETY: as in `pread`, for a buffer libnbd only reads.
        unsafe { (self.lib.aio_pwrite)(self.h(), addr as *const c_void, n, offset, cb, 0) != -1 }
    }

    /// NBD_CMD_FLUSH.
    pub fn flush<C: Completion>(&self, done: C) -> bool {
        let cb = completion(done, Lease::none());
        // SAFETY: `h` is live; libnbd owns `cb`.
        unsafe { (self.lib.aio_flush)(self.h(), cb, 0) != -1 }
    }

    /// Block status of `len` bytes at `offset`, for every negotiated context, into `sink`.
    pub fn block_status<S: ExtentSink, C: Completion>(
        &self,
        len: u64,
        offset: u64,
        sink: Arc<S>,
        done: C,
    ) -> bool {
        let ecb = nbd_extent_callback {
            callback: Some(on_extents::<S>),
            user_data: Box::into_raw(Box::new(sink)).cast(),
            free: Some(free_extents::<S>),
        };
        let cb = completion(done, Lease::none());
        // SAFETY: `h` is live; libnbd owns both callbacks' user data until their frees.
        unsafe { (self.lib.aio_block_status)(self.h(), len, offset, ecb, cb, 0) != -1 }
    }

    /// Queues NBD_CMD_DISC: the server ends the session after the commands in flight.
    pub fn disconnect(&self) {
        // SAFETY: `h` is live; aio_disconnect only queues a command.
        unsafe { (self.lib.aio_disconnect)(self.h(), 0) };
    }
}
