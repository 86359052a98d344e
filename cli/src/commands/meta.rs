//! `vixdisk meta list|get|set`: the descriptor's DDB entries (keys without `ddb.`).

use std::path::Path;

use vixDiskLib::Error;

use super::{open, with_disk};
use crate::failure::{CmdResult, Failure, OnFile};

/// Prints `key = "value"` for every key visible through the chain.
pub fn list(path: &Path) -> CmdResult {
    with_disk(open(path, true, false)?, path, |disk| {
        for key in disk.metadata_keys().on(path)? {
            let value = disk.metadata(&key).on(path)?.unwrap_or_default();
            say!("{key} = \"{value}\"");
        }
        Ok(())
    })
}

/// Prints the value of `key` (VIX_E_DISK_KEY_NOTFOUND if no link has it).
pub fn get(path: &Path, key: &str) -> CmdResult {
    with_disk(open(path, true, false)?, path, |disk| {
        match disk.metadata(key).on(path)? {
            Some(value) => {
                say!("{value}");
                Ok(())
            }
            None => Err(Failure::Engine {
                file: path.to_path_buf(),
                error: Error::KeyNotFound(key.to_string()),
            }),
        }
    })
}

/// Sets `key` in the leaf's descriptor (only the leaf is opened, for writing).
pub fn set(path: &Path, key: &str, value: &str) -> CmdResult {
    with_disk(open(path, false, true)?, path, |disk| {
        disk.set_metadata(key, value)
            .map_err(|error| Failure::Engine {
                file: path.to_path_buf(),
                error,
            })
    })
}
