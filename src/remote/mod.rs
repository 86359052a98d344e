//! Remote disks over NBD, the safe half: what a `serverName` means, the settings from the
//! InitEx config file, how requests are cut to the server's limits, and how block-status
//! extents become VDDK block lists. The libnbd client itself (C types, `unsafe`) is
//! `ffi::nbd`.

pub mod extents;
pub mod settings;
pub mod split;
pub mod target;
