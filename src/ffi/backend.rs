//! What a disk handle holds: a local chain of VMDK links, or a remote NBD export. The calls
//! both kinds answer go through the engine's `DiskBackend` trait (`as_backend`); calls only a
//! local chain can answer (metadata, redo logs, compaction, …) reach it through `local`, which
//! refuses remote disks with VIX_E_NOT_SUPPORTED and a log line naming the call.

use std::ops::Deref;
use std::sync::Arc;

use crate::backend::{DiskBackend, Transport};
use crate::chain::Disk;
use crate::error::{Error, Result};
use crate::remote::disk::NbdDisk;

/// The disk behind a handle.
pub enum Backend {
    /// VMDK files on this host.
    Local(Arc<Disk>),
    /// An export of an NBD server.
    Remote(Arc<NbdDisk>),
}

impl Backend {
    /// The local chain, or VIX_E_NOT_SUPPORTED naming `call` for a remote disk.
    pub fn local(&self, call: &str) -> Result<&Disk> {
        match self {
            Backend::Local(d) => Ok(d),
            Backend::Remote(_) => Err(Error::NotSupported(format!(
                "{call} works on local disks only, not on a remote NBD export"
            ))),
        }
    }

    /// The disk as the engine's backend trait, shared (for asynchronous requests, which keep
    /// it alive until they finish).
    pub fn shared(&self) -> Arc<dyn DiskBackend> {
        match self {
            Backend::Local(d) => Arc::clone(d) as Arc<dyn DiskBackend>,
            Backend::Remote(r) => Arc::clone(r) as Arc<dyn DiskBackend>,
        }
    }

    /// The transport GetTransportMode reports, NUL-terminated.
    pub fn transport_name(&self) -> &'static [u8] {
        match self.transport() {
            Transport::File => b"file\0",
            Transport::Nbd => b"nbd\0",
            Transport::NbdSsl => b"nbdssl\0",
        }
    }
}

impl Deref for Backend {
    type Target = dyn DiskBackend;

    /// Every call both kinds answer dispatches here, once.
    fn deref(&self) -> &(dyn DiskBackend + 'static) {
        match self {
            Backend::Local(d) => &**d,
            Backend::Remote(r) => &**r,
        }
    }
}
