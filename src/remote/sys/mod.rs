//! Everything of the NBD client that is not safe Rust, behind safe types: libnbd's entry points
//! (`bindings`, loaded at run time), a libnbd handle (`handle`), the caller's memory that
//! commands read or fill (`buf`), and the few system calls the poller needs (`poll`,
//! `shutdown`). Every `unsafe` of the engine outside `ffi` is in this module (tests/layering.rs
//! checks), each with its `SAFETY` reason.

mod bindings;
mod buf;
mod handle;

use std::os::fd::{AsRawFd, OwnedFd};

pub use buf::IoBuf;
pub use handle::{Completion, Direction, ExtentSink, Handle, LibError, TlsMode};

use crate::error::Result;

/// Loads libnbd now (if not yet): a machine without it gets VIX_E_NOT_SUPPORTED with a line
/// saying what to install.
pub fn ensure_loaded() -> Result<()> {
    bindings::lib().map(drop)
}

/// One descriptor to wait on, as `poll(2)` takes it.
pub type PollFd = libc::pollfd;

/// `poll(2)` over `fds` for up to `timeout_ms` milliseconds; the number of ready descriptors
/// (0 on timeout, -1 on error such as EINTR).
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> i32 {
    // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()` pollfd entries.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }
}

/// Shuts a socket down both ways, so every read or write on it (by anyone holding a
/// descriptor of it) fails at once.
pub fn shutdown(socket: &OwnedFd) {
    // SAFETY: the descriptor is open for as long as `socket` lives; shutdown changes no memory.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
}
