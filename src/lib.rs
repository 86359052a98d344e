//! vixdisklib: VMware's VixDiskLib C API for hosted VMDK disks, over a safe Rust engine.
//!
//! Layers: `vmdk` (on-disk formats), `chain` (links opened together), `ffi` (the C ABI, the
//! only place with C types and `unsafe`).
#![allow(non_snake_case)]

pub mod chain;
pub mod error;
pub mod ffi;
pub mod log;
pub mod vmdk;
