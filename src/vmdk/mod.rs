//! The VMDK format engine: safe Rust, no knowledge of C.

pub mod atomic;
pub mod check;
pub mod cowd;
pub mod create;
pub mod descriptor;
pub mod extent;
pub mod fd_cache;
pub mod fileio;
pub mod geometry;
pub mod grain_map;
pub mod grow;
pub mod header;
pub mod iolog;
pub mod link;
pub mod link_files;
pub mod markers;
pub mod peek;
pub mod rewrite;
pub mod sesparse;
pub mod sparse;
pub mod stream_append;
pub mod stream_read;
pub mod stream_writer;
pub mod track;
mod track_id;
mod track_layout;
pub mod writeback;
