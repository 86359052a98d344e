//! `vixdisk map`: which link of the chain owns each area of the disk; with `--changed-since
//! ID`, only the areas changed since a change id (QueryChangedAreas' answer, 64 KiB grains).

use std::path::Path;

use serde::Serialize;
use vixDiskLib::{ChangeId, Disk, Mapped, Result};

use super::{open_to_read, with_disk};
use crate::failure::{CmdResult, Failure, OnFile, since_failure};
use crate::units::SECTOR;

/// One area, with the fields and meaning of `qemu-img map --output=json` (bytes; `depth` 0 is
/// the leaf; areas no link stores have the base's depth and `present: false`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Area {
    pub(super) start: u64,
    pub(super) length: u64,
    pub(super) depth: usize,
    pub(super) present: bool,
    pub(super) zero: bool,
    pub(super) data: bool,
    pub(super) compressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) offset: Option<u64>,
    /// The file holding the area (text output only).
    #[serde(skip)]
    pub(super) file: String,
}

impl Area {
    /// Appends `next` to `self` if it continues it (same kind, same file, adjacent offsets).
    fn extend(&mut self, next: &Area) -> bool {
        let same = self.depth == next.depth
            && self.present == next.present
            && self.zero == next.zero
            && self.data == next.data
            && self.compressed == next.compressed
            && self.file == next.file
            && self.start + self.length == next.start;
        let contiguous = match (self.offset, next.offset) {
            (None, None) => true,
            (Some(a), Some(b)) => a + self.length == b,
            _ => false,
        };
        if same && contiguous {
            self.length += next.length;
        }
        same && contiguous
    }
}

fn push(out: &mut Vec<Area>, area: Area) {
    if out.last_mut().is_some_and(|last| last.extend(&area)) {
        return;
    }
    out.push(area);
}

/// The areas of `[sector, sector + count)` as the chain holds them, merged where adjacent.
fn walk(disk: &Disk, sector: u64, count: u64, out: &mut Vec<Area>) -> Result<()> {
    for run in disk.map(sector, count)? {
        let mut area = Area {
            start: run.start * SECTOR,
            length: run.sectors * SECTOR,
            depth: run.depth,
            present: true,
            zero: false,
            data: true,
            compressed: false,
            offset: None,
            file: run.link.display().to_string(),
        };
        match run.mapped {
            Mapped::Data { file, offset } => {
                area.offset = Some(offset);
                if let Some(p) = file {
                    area.file = p.display().to_string();
                }
            }
            Mapped::Compressed => area.compressed = true,
            Mapped::Zero => {
                area.zero = true;
                area.data = false;
            }
            Mapped::Unallocated => {
                area.present = false;
                area.zero = true;
                area.data = false;
            }
        }
        push(out, area);
    }
    Ok(())
}

/// Prints the present areas (and with `all`, the unallocated ones too).
fn print_text(areas: &[Area], all: bool) {
    say!(
        "{:<16}{:<16}{:<16}{:<7}File",
        "Offset",
        "Length",
        "Mapped to",
        "Depth"
    );
    for a in areas.iter().filter(|a| all || a.present) {
        let mapped = match (a.offset, a.compressed, a.present) {
            (Some(o), _, _) => format!("{o:#x}"),
            (None, true, _) => "compressed".into(),
            (None, false, true) => "zero".into(),
            (None, false, false) => "unallocated".into(),
        };
        say!(
            "{:<16}{:<16}{:<16}{:<7}{}",
            format!("{:#x}", a.start),
            format!("{:#x}", a.length),
            mapped,
            a.depth,
            a.file
        );
    }
}

/// A `--changed-since` value for a local disk: `*`, or a change id as `vixdisk changeid`
/// prints it ("UUID/number"). Anything else is bad usage (exit 2) before the disk is opened.
/// (Not a clap value parser: for an NBD export the value names a dirty bitmap instead.)
fn check_change_id(text: &str) -> CmdResult {
    if vixDiskLib::ChangeId::parse(text).is_some() {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "{text:?} is not a change id (\"UUID/number\" as `vixdisk changeid` prints it, or \"*\")"
        )))
    }
}

/// Prints the map of the disk at `path`, or of the areas changed since `changed_since`.
pub fn run(path: &Path, json: bool, changed_since: Option<&str>, force_share: bool) -> CmdResult {
    if super::remote::is_uri(path) {
        return super::remote::map(path, json, changed_since, force_share);
    }
    if let Some(id) = changed_since {
        check_change_id(id)?;
    }
    let disk = open_to_read(path, force_share)?;
    let areas = with_disk(disk, path, |disk| {
        let runs = match changed_since {
            None => vec![(0, disk.capacity())],
            Some(id) => disk
                .changed_areas(&ChangeId::new(id), 0, disk.capacity())
                .map_err(|e| since_failure(path, e))?
                .iter()
                .map(|a| (a.start, a.sectors))
                .collect(),
        };
        let mut areas = Vec::new();
        for (start, count) in runs {
            walk(disk, start, count, &mut areas).on(path)?;
        }
        Ok(areas)
    })?;
    if json {
        print_json(&areas);
    } else {
        print_text(&areas, changed_since.is_some());
    }
    Ok(())
}

/// `areas` as qemu-img map's JSON: one object per line inside the array.
pub(super) fn print_json(areas: &[Area]) {
    let lines: Vec<String> = areas
        .iter()
        .map(|a| serde_json::to_string(a).expect("plain data serializes"))
        .collect();
    say!("[{}]", lines.join(",\n"));
}
