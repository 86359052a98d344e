//! The C ABI of VixDiskLib: C types, handles, argument checks and error codes, one file per API
//! family. With `remote::sys`, the only module with `unsafe`.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]
// Exported functions receive raw pointers from C by contract (VMware's API): each checks them
// for NULL and documents what it reads or writes; the `args` helpers are the checked path.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod alloc;
pub mod args;
pub mod blocks;
pub mod boundary;
pub mod chain;
pub mod changes;
pub mod codes;
pub mod connect;
pub mod disk;
pub mod error_texts;
pub mod errors;
pub mod ext;
pub mod handles;
pub mod io;
pub mod library;
pub mod maintenance;
pub mod metadata;
pub mod progress;
pub mod types;
