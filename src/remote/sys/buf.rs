//! Memory that a request reads from or fills: a C caller's buffer (kept valid by VDDK's
//! contract until the request's callback ran) or a Rust slice lent for a synchronous call,
//! which is not given back until libnbd retired every command that uses it.

use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result};

/// A request's memory. libnbd may use it from another thread until the commands that name it
/// are retired; for lent slices `IoBuf::lend`/`lend_mut` wait for that before they return.
/// Asynchronous requests ([`Disk::read_async`](crate::Disk::read_async)) take one made from
/// a caller's raw buffer.
///
/// ```
/// let mut sector = [0u8; 512];
/// let len = vixDiskLib::IoBuf::lend_mut(&mut sector, |buf| buf.len());
/// assert_eq!(len, 512);
/// ```
pub struct IoBuf {
    addr: usize,
    len: usize,
    /// Whether the memory may be written (a read's destination).
    writable: bool,
    /// Counts the commands still using lent memory; None for memory the caller guarantees.
    lent: Option<Arc<Lent>>,
}

/// Commands in flight on lent memory.
#[derive(Default)]
struct Lent {
    users: Mutex<usize>,
    idle: Condvar,
}

/// One command's claim on lent memory, released when libnbd frees the command.
pub(super) struct Lease(Option<Arc<Lent>>);

impl Lease {
    /// No claim: the command uses no memory of ours.
    pub(super) fn none() -> Lease {
        Lease(None)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(lent) = &self.0 {
            let mut n = lent.users.lock().unwrap_or_else(|e| e.into_inner());
            *n -= 1;
            if *n == 0 {
                lent.idle.notify_all();
            }
        }
    }
}

/// Waits, also when unwinding, until no command uses the lent memory any more.
struct Return(Arc<Lent>);

impl Drop for Return {
    fn drop(&mut self) {
        let mut n = self.0.users.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            n = self.0.idle.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl IoBuf {
    /// A C caller's destination buffer of `len` bytes.
    ///
    /// ```
    /// let mut data = vec![0u8; 512];
    /// // SAFETY: `data` outlives `buf` and nothing else uses it meanwhile.
    /// let mut buf = unsafe { vixDiskLib::IoBuf::from_raw_mut(data.as_mut_ptr(), data.len()) };
    /// buf.as_mut_slice()?.fill(1);
    /// drop(buf);
    /// assert_eq!(data, [1; 512]);
    /// # Ok::<(), vixDiskLib::Error>(())
    /// ```
    ///
    /// # Safety
    /// `ptr..ptr+len` must be writable memory that nothing else uses until the request this
    /// buffer is given to has finished (its completion ran, or starting it failed).
    pub unsafe fn from_raw_mut(ptr: *mut u8, len: usize) -> IoBuf {
        IoBuf {
            addr: ptr as usize,
            len,
            writable: true,
            lent: None,
        }
    }

    /// A C caller's source buffer of `len` bytes.
    ///
    /// ```
    /// let data = vec![3u8; 512];
    /// // SAFETY: `data` outlives `buf` and nothing writes it meanwhile.
    /// let buf = unsafe { vixDiskLib::IoBuf::from_raw(data.as_ptr(), data.len()) };
    /// assert_eq!(buf.as_slice()?, &data[..]);
    /// # Ok::<(), vixDiskLib::Error>(())
    /// ```
    ///
    /// # Safety
    /// `ptr..ptr+len` must be readable memory that nothing writes until the request this buffer
    /// is given to has finished (its completion ran, or starting it failed).
    pub unsafe fn from_raw(ptr: *const u8, len: usize) -> IoBuf {
        IoBuf {
            addr: ptr as usize,
            len,
            writable: false,
            lent: None,
        }
    }

    /// Lends `buf` to `f` as a request's destination; returns once no command uses it.
    ///
    /// ```
    /// let mut data = [0u8; 1024];
    /// vixDiskLib::IoBuf::lend_mut(&mut data, |buf| assert!(buf.as_slice().is_err()));
    /// ```
    pub fn lend_mut<R>(buf: &mut [u8], f: impl FnOnce(&IoBuf) -> R) -> R {
        Self::lend_raw(buf.as_mut_ptr() as usize, buf.len(), true, f)
    }

    /// Lends `buf` to `f` as a request's source; returns once no command uses it.
    ///
    /// ```
    /// let data = [9u8; 512];
    /// vixDiskLib::IoBuf::lend(&data, |buf| assert_eq!(buf.as_slice().unwrap()[0], 9));
    /// ```
    pub fn lend<R>(buf: &[u8], f: impl FnOnce(&IoBuf) -> R) -> R {
        Self::lend_raw(buf.as_ptr() as usize, buf.len(), false, f)
    }

    fn lend_raw<R>(addr: usize, len: usize, writable: bool, f: impl FnOnce(&IoBuf) -> R) -> R {
        let lent = Arc::new(Lent::default());
        let _wait = Return(Arc::clone(&lent));
        let buf = IoBuf {
            addr,
            len,
            writable,
            lent: Some(lent),
        };
        f(&buf)
    }

    /// Its length in bytes.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::IoBuf::lend(&[0u8; 512], |buf| buf.len()), 512);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    ///
    /// ```
    /// assert!(vixDiskLib::IoBuf::lend(&[], |buf| buf.is_empty()));
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A source buffer's bytes; refused for a destination, which commands may be filling.
    ///
    /// ```
    /// vixDiskLib::IoBuf::lend(&[4u8; 512], |buf| assert_eq!(buf.as_slice().unwrap(), &[4; 512]));
    /// ```
    pub fn as_slice(&self) -> Result<&[u8]> {
        if self.writable {
            return Err(Error::InvalidArg(
                "the buffer is a read's destination".into(),
            ));
        }
        if self.len == 0 {
            return Ok(&[]);
        }
        // SAFETY: a source buffer's memory is readable and nothing writes it while this buffer
        // lives (the constructors' contracts; lent slices are borrowed for its whole life).
        Ok(unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) })
    }

    /// Its bytes, to fill; refused for a source buffer.
    ///
    /// ```
    /// let data = [0u8; 512];
    /// // SAFETY: `data` outlives `buf`.
    /// let mut buf = unsafe { vixDiskLib::IoBuf::from_raw(data.as_ptr(), data.len()) };
    /// assert!(buf.as_mut_slice().is_err()); // a write's source is never written
    /// ```
    pub fn as_mut_slice(&mut self) -> Result<&mut [u8]> {
        if !self.writable {
            return Err(Error::InvalidArg("the buffer is read-only".into()));
        }
        if self.len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: the memory is writable and used by nothing else while this buffer lives
        // (the constructors' contracts), and `&mut self` makes this the only slice of it.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) })
    }

    /// The address of `[at, at + n)` inside the buffer, and a lease a command holds until
    /// libnbd frees it. Panics if the range is outside (a bug in the caller's cutting).
    pub(super) fn range(&self, at: usize, n: usize, write_into: bool) -> (usize, Lease) {
        assert!(
            at.checked_add(n).is_some_and(|end| end <= self.len),
            "request range outside its buffer"
        );
        assert!(
            !write_into || self.writable,
            "a read's destination must be writable"
        );
        let lease = self.lent.as_ref().map(|lent| {
            *lent.users.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            Arc::clone(lent)
        });
        (self.addr + at, Lease(lease))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_lent_slice_comes_back_only_after_every_command_released_it() {
        let mut data = vec![0u8; 4096];
        let released = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&released);
        let worker = IoBuf::lend_mut(&mut data, |buf| {
            // What libnbd holds for a command in flight: a lease, released from its thread.
            let (_, lease) = buf.range(512, 1024, true);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                flag.store(true, Ordering::SeqCst);
                drop(lease);
            })
        });
        assert!(
            released.load(Ordering::SeqCst),
            "lend_mut returned while a command still held the buffer"
        );
        worker.join().unwrap();
    }

    #[test]
    fn sources_are_not_written_and_destinations_not_read() {
        let mut data = vec![7u8; 512];
        IoBuf::lend_mut(&mut data, |buf| {
            assert!(buf.as_slice().is_err());
        });
        // SAFETY: `data` outlives `src` and nothing writes it meanwhile.
        let mut src = unsafe { IoBuf::from_raw(data.as_ptr(), data.len()) };
        assert_eq!(src.as_slice().unwrap(), &[7u8; 512][..]);
        assert!(src.as_mut_slice().is_err());
    }

    #[test]
    #[should_panic(expected = "outside its buffer")]
    fn a_command_range_outside_the_buffer_is_refused() {
        let data = vec![0u8; 512];
        IoBuf::lend(&data, |buf| {
            buf.range(256, 512, false);
        });
    }
}
