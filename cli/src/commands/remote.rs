//! A remote NBD export named by a URI (`nbd://host[:port]/export`,
//! `nbd+unix:///export?socket=PATH`, and the `nbds` forms with TLS), read through the engine's
//! NBD backend: `info` and `map` here, and the opening and flag checks `convert` and `backup`
//! use to read one as their source. Settings are the library's defaults (no InitEx config
//! file); TLS credentials may come in the URI's query. An export is only ever a source: it is
//! opened read-only, and a URI where a new local file is to be made is refused.

use std::path::Path;

use serde::Serialize;
use vixDiskLib::{ChangeId, Connection, Disk, Error, OpenOptions};

use super::map::{Area, print_json};
use crate::failure::{CmdResult, Failure, OnFile, since_failure};
use crate::units::{SECTOR, human_bytes};

/// URI schemes of NBD exports.
const SCHEMES: &[&str] = &["nbd://", "nbds://", "nbd+unix://", "nbds+unix://"];

/// Whether the disk argument names an NBD export rather than a file.
pub fn is_uri(disk: &Path) -> bool {
    let text = disk.to_string_lossy();
    SCHEMES.iter().any(|s| text.starts_with(s))
}

/// Bad usage unless `path`, where `role` (e.g. "the convert target") is made or read as a
/// local file, is not a URI: exports are read, never written.
pub fn refuse_uri(path: &Path, role: &str) -> CmdResult {
    if !is_uri(path) {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "{role} must be a local path, not {}: an NBD export can only be read, as the source \
         of info, map, convert or backup",
        path.display()
    )))
}

/// Bad usage if `given`: `flag` has no meaning for the export `uri` (`why` says so).
pub fn refuse_flag(uri: &Path, given: bool, flag: &str, why: &str) -> CmdResult {
    if !given {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "{flag} cannot be used with the NBD export {}: {why}",
        uri.display()
    )))
}

/// Connects read-only to the export, to copy from it. An export whose size ends in a partial
/// sector is refused: sector reads cannot reach those bytes, and a copy without them would
/// look complete.
pub fn open_source(uri: &Path) -> CmdResult<Disk> {
    let disk = open(uri, None)?;
    let size = disk.size_bytes();
    let tail = size % Disk::SECTOR_SIZE;
    if tail == 0 {
        return Ok(disk);
    }
    let _ = disk.close();
    Err(Error::NotSupported(format!(
        "the export's size, {size} bytes, is not a multiple of {}: its last {tail} bytes \
         cannot be read, so it cannot be copied whole",
        Disk::SECTOR_SIZE
    )))
    .on(uri)
}

/// Connects read-only; `change_id` names a dirty bitmap to negotiate.
fn open(uri: &Path, change_id: Option<&str>) -> CmdResult<Disk> {
    let connection = Connection::nbd(&uri.to_string_lossy()).on(uri)?;
    connection
        .open(
            "",
            &OpenOptions {
                read_only: true,
                change_id: change_id.map(ChangeId::new),
                ..Default::default()
            },
        )
        .on(uri)
}

/// Runs `work` on the export and closes it, reporting the first error.
fn with_export<T>(
    uri: &Path,
    change_id: Option<&str>,
    work: impl FnOnce(&Disk) -> CmdResult<T>,
) -> CmdResult<T> {
    let disk = open(uri, change_id)?;
    let result = work(&disk);
    let closed = disk.close().on(uri);
    let value = result?;
    closed?;
    Ok(value)
}

/// Why `--force-share` does not apply to an export.
pub const FORCE_SHARE_WHY: &str =
    "it reads a local disk without taking its lock; who may share an export is up to the server";

#[derive(Serialize)]
struct ExportReport {
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    capacity: u64,
    capacity_sectors: u64,
    transport: &'static str,
}

/// `vixdisk info URI`.
pub fn info(uri: &Path, json: bool, force_share: bool) -> CmdResult {
    refuse_flag(uri, force_share, "--force-share", FORCE_SHARE_WHY)?;
    let report = with_export(uri, None, |disk| {
        let capacity = disk.capacity();
        Ok(ExportReport {
            path: uri.display().to_string(),
            kind: "nbd export",
            capacity: capacity * SECTOR,
            capacity_sectors: capacity,
            transport: disk.transport(),
        })
    })?;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).expect("plain data serializes")
        );
    } else {
        say!("disk: {}", report.path);
        say!("type: {}", report.kind);
        say!(
            "capacity: {} ({} bytes, {} sectors)",
            human_bytes(report.capacity),
            report.capacity,
            report.capacity_sectors
        );
        say!("transport: {}", report.transport);
    }
    Ok(())
}

/// `vixdisk map URI`: the allocated areas (the server's `base:allocation`), or with
/// `--changed-since` the dirty areas of the bitmap it names (`qemu-nbd -B NAME`).
pub fn map(uri: &Path, json: bool, changed_since: Option<&str>, force_share: bool) -> CmdResult {
    refuse_flag(uri, force_share, "--force-share", FORCE_SHARE_WHY)?;
    if changed_since.is_some_and(|n| n.trim().is_empty()) {
        return Err(Failure::Usage(
            "--changed-since needs the name of a dirty bitmap the server exports".into(),
        ));
    }
    let id = changed_since.unwrap_or("*");
    let (runs, capacity) = with_export(uri, changed_since, |disk| {
        let capacity = disk.capacity();
        let runs = disk
            .changed_areas(&ChangeId::new(id), 0, capacity)
            .map_err(|e| since_failure(uri, e))?;
        Ok((runs, capacity))
    })?;
    // Every area with --json as for a local disk (holes too, unless only changes were asked).
    let mut areas = Vec::new();
    let mut at = 0;
    let hole = |start: u64, end: u64| Area {
        start: start * SECTOR,
        length: (end - start) * SECTOR,
        depth: 0,
        present: false,
        zero: true,
        data: false,
        compressed: false,
        offset: None,
        file: String::new(),
    };
    for (start, count) in runs.iter().map(|a| (a.start, a.sectors)) {
        if start > at && changed_since.is_none() {
            areas.push(hole(at, start));
        }
        areas.push(Area {
            start: start * SECTOR,
            length: count * SECTOR,
            depth: 0,
            present: true,
            zero: false,
            data: true,
            compressed: false,
            offset: None,
            file: String::new(),
        });
        at = start + count;
    }
    if at < capacity && changed_since.is_none() {
        areas.push(hole(at, capacity));
    }
    if json {
        print_json(&areas);
    } else {
        say!(
            "{:<16}{:<16}{:<16}{:<7}File",
            "Offset",
            "Length",
            "Mapped to",
            "Depth"
        );
        for a in areas.iter().filter(|a| a.present) {
            say!(
                "{:<16}{:<16}{:<16}{:<7}{}",
                format!("{:#x}", a.start),
                format!("{:#x}", a.length),
                "remote",
                a.depth,
                uri.display()
            );
        }
    }
    Ok(())
}
