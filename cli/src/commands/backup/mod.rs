//! `vixdisk backup full|incremental|differential` and `vixdisk restore`: the seeds' backup and
//! recovery algorithm on plain backup directories (a data file and a JSON manifest each).
//!
//! - take.rs: a backup: snapshot (optional), change id, the blocks to copy, data + manifest;
//! - manifest.rs: the manifest, its checks and the chain of backups it names;
//! - restore.rs: newest backup first into a new disk, skipping sectors already restored;
//! - ranges.rs: the set of sectors already restored.

mod manifest;
mod ranges;
mod restore;
mod take;

use std::fs::File;
use std::path::Path;

pub use restore::restore;
pub use take::take;

pub use manifest::Kind;

use crate::failure::{CmdResult, OnFile};

const MANIFEST: &str = "manifest.json";
const DATA: &str = "data.bin";
/// Sectors read and written per step (1 MiB): the interrupt flag is checked this often.
const STEP: u64 = 2048;

fn fsync_dir(dir: &Path) -> CmdResult {
    File::open(dir).and_then(|d| d.sync_all()).on(dir)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
