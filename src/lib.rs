//! vixdisklib: VMware's VixDiskLib C API for hosted VMDK disks, over a safe Rust engine.
//!
//! Layers: `vmdk` (on-disk formats), `chain` (links opened together), `remote` (NBD exports,
//! with the run-time-loaded libnbd behind `remote::sys`), `backend` (the one trait both kinds
//! of disk implement), `ffi` (the C ABI). `unsafe` lives only in `ffi` and `remote::sys`.
#![allow(non_snake_case)]

pub mod backend;
pub mod chain;
pub mod error;
pub mod error_kind;
pub mod ffi;
pub mod log;
pub mod remote;
pub mod vmdk;
