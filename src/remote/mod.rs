//! Remote disks over NBD, a backend of the engine (`disk::NbdDisk` is a `DiskBackend`): what a
//! `serverName` means (`target`), the settings from the InitEx config file (`settings`), how
//! requests are cut to the server's limits (`split`) and block-status extents become VDDK
//! block lists (`extents`); the libnbd client: a connection (`client`), requests in flight
//! (`ops`), the poller thread that drives every connection (`poller`) and the thread that runs
//! finished requests' callbacks (`callbacks`). All its `unsafe` (libnbd, loaded at run time,
//! and a few system calls) is in `sys`.

pub mod callbacks;
pub mod client;
pub mod disk;
pub mod extents;
pub mod ops;
pub mod poller;
pub mod settings;
pub mod split;
pub mod sys;
pub mod target;
