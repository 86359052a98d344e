//! vixdisklib: VMware's VixDiskLib C API for hosted VMDK disks, over a safe Rust engine.
//!
//! The public Rust API is this crate root: one door into the engine for every front end (the
//! `vixdisk` CLI, the fuzz targets, Rust programs). It mirrors what the VixDiskLib C API offers, in Rust terms:
//!
//! - [`Connection`] reaches disks: local VMDK files, or the exports of an NBD server
//!   (`nbd://` URIs). It creates, opens, clones, grows, renames, deletes, checks and commits.
//! - [`Disk`] is one open disk (a chain of VMDK links, or an NBD export): sector reads and
//!   writes, flush, info, metadata, allocated and changed areas, redo logs, compaction.
//! - [`DiskCursor`] is a byte-addressed `std::io::{Read, Write, Seek}` view of a whole disk.
//! - [`Error`] is the engine's one error type; [`Error::kind`] gives its [`ErrorKind`], whose
//!   `code()` and `name()` are VixDiskLib's error code and name.
//! - [`fuzz`] runs one fuzz target (a parser fed arbitrary bytes), for the fuzz front ends.
//!
//! Sectors are 512 bytes ([`Disk::SECTOR_SIZE`]); sector calls take whole-sector buffers.
//!
//! ```
//! use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("disk.vmdk");
//! let conn = Connection::local();
//! conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
//! let disk = conn.open(&path, &OpenOptions::default())?;
//! disk.write(0, &[0xab; 512])?;
//! let mut back = [0u8; 512];
//! disk.read(0, &mut back)?;
//! assert_eq!(back, [0xab; 512]);
//! disk.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Engine layers (internal; front ends use only the API above): `vmdk` (on-disk formats),
//! `chain` (links opened together), `remote` (NBD exports, with the run-time-loaded libnbd
//! behind `remote::sys`), `backend` (the one trait both kinds of disk implement), `ffi` (the
//! C ABI). `unsafe` lives only in `ffi` and `remote::sys`.
#![allow(non_snake_case)]

mod api;

pub use api::*;

// The engine's modules stay `pub` for the integration tests in tests/ (which test the
// layers themselves) and for the C ABI's exports; they are hidden from the documentation,
// which shows the facade only. Front ends use the facade (tests/layering.rs checks the CLI
// and the fuzz front ends, which reach the parsers through `fuzz`).

#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod chain;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod error_kind;
#[doc(hidden)]
pub mod ffi;
#[doc(hidden)]
pub mod log;
#[doc(hidden)]
pub mod remote;
#[doc(hidden)]
pub mod vmdk;
