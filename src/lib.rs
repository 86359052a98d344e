//! vixdisklib: VMware's VixDiskLib C API for hosted VMDK disks, over a safe Rust engine.
//!
//! Layers: `vmdk` (on-disk formats), `chain` (links opened together), `remote` (NBD disks'
//! safe logic), `ffi` (the C ABI, the only place with C types and `unsafe`, including the
//! run-time-loaded libnbd client).
#![allow(non_snake_case)]

pub mod chain;
pub mod error;
pub mod ffi;
pub mod log;
pub mod remote;
pub mod vmdk;
