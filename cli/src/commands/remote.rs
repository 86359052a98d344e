//! `info` and `map` of a remote NBD export, named by a URI (`nbd://host[:port]/export`,
//! `nbd+unix:///export?socket=PATH`, and the `nbds` forms with TLS), read through the engine's
//! NBD backend with the same flags as a local disk. Settings are the library's defaults (no
//! InitEx config file); TLS credentials may come in the URI's query.

use std::path::Path;

use serde::Serialize;
use vixDiskLib::{ChangeId, Connection, Disk, OpenOptions};

use super::map::Area;
use crate::failure::{CmdResult, OnFile, since_failure};
use crate::units::{SECTOR, human_bytes};

/// URI schemes of NBD exports.
const SCHEMES: &[&str] = &["nbd://", "nbds://", "nbd+unix://", "nbds+unix://"];

/// Whether the disk argument names an NBD export rather than a file.
pub fn is_uri(disk: &Path) -> bool {
    let text = disk.to_string_lossy();
    SCHEMES.iter().any(|s| text.starts_with(s))
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
pub fn info(uri: &Path, json: bool) -> CmdResult {
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
pub fn map(uri: &Path, json: bool, changed_since: Option<&str>) -> CmdResult {
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
        let lines: Vec<String> = areas
            .iter()
            .map(|a| serde_json::to_string(a).expect("plain data serializes"))
            .collect();
        say!("[{}]", lines.join(",\n"));
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
