//! `vixdisk info`: type, capacity, adapter, geometry and the chain as a tree.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use super::{open_to_read, with_disk};
use crate::failure::{CmdResult, OnFile};
use crate::units::{SECTOR, human_bytes};

#[derive(Serialize)]
struct LinkInfo {
    path: String,
    #[serde(rename = "type")]
    create_type: String,
    cid: String,
    parent_cid: Option<String>,
    parent_hint: Option<String>,
    files: Vec<String>,
    /// Bytes the link's files occupy on the host file system.
    disk_usage: u64,
    change_tracking: &'static str,
}

#[derive(Serialize)]
struct Geometry {
    cylinders: u32,
    heads: u32,
    sectors: u32,
}

#[derive(Serialize)]
struct DiskReport {
    path: String,
    #[serde(rename = "type")]
    create_type: String,
    capacity: u64,
    capacity_sectors: u64,
    adapter: Option<&'static str>,
    hw_version: Option<String>,
    uuid: Option<String>,
    geometry: Geometry,
    /// "on" (ours: `vixdisk changeid`), "off", or "unsupported" (VMware's own tracking).
    change_tracking: &'static str,
    /// Leaf first, base last.
    chain: Vec<LinkInfo>,
}

/// One link as `info` reports it (sizes on disk measured here).
fn link_info(link: &vixDiskLib::LinkInfo) -> LinkInfo {
    let disk_usage = link
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.blocks() * 512)
        .sum();
    LinkInfo {
        path: link.path.display().to_string(),
        create_type: link.create_type.clone(),
        cid: format!("{:08x}", link.cid),
        parent_cid: link.parent_cid.map(|c| format!("{c:08x}")),
        parent_hint: link.parent_hint.clone(),
        files: link.files.iter().map(|f| f.display().to_string()).collect(),
        disk_usage,
        change_tracking: link.tracking.name(),
    }
}

fn print_text(r: &DiskReport) {
    say!("disk: {}", r.path);
    say!("type: {}", r.create_type);
    say!(
        "capacity: {} ({} bytes, {} sectors)",
        human_bytes(r.capacity),
        r.capacity,
        r.capacity_sectors
    );
    say!("adapter: {}", r.adapter.unwrap_or("unknown"));
    if let Some(hw) = &r.hw_version {
        say!("hardware version: {hw}");
    }
    say!(
        "geometry: {}/{}/{} (C/H/S)",
        r.geometry.cylinders,
        r.geometry.heads,
        r.geometry.sectors
    );
    if let Some(uuid) = &r.uuid {
        say!("uuid: {uuid}");
    }
    say!("change tracking: {}", r.change_tracking);
    say!("chain ({} link(s), leaf first):", r.chain.len());
    for (depth, l) in r.chain.iter().enumerate() {
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└─ ", "   ".repeat(depth - 1))
        };
        say!(
            "  {indent}{} [{}, CID {}, {} on disk]",
            l.path,
            l.create_type,
            l.cid,
            human_bytes(l.disk_usage)
        );
        if let (Some(pcid), Some(hint)) = (&l.parent_cid, &l.parent_hint) {
            let pad = "   ".repeat(depth);
            say!("  {pad}   parent hint {hint:?}, parentCID {pcid}");
        }
    }
}

/// Prints what is known about the disk at `path` and its chain.
pub fn run(path: &Path, json: bool, force_share: bool) -> CmdResult {
    if super::remote::is_uri(path) {
        return super::remote::info(path, json, force_share);
    }
    let disk = open_to_read(path, force_share)?;
    let report = with_disk(disk, path, |disk| {
        let info = disk.info();
        let links: Vec<LinkInfo> = disk.links().on(path)?.iter().map(link_info).collect();
        let tracking = if disk.is_change_tracked() {
            "on"
        } else if links.iter().any(|l| l.change_tracking == "unsupported") {
            "unsupported"
        } else {
            "off"
        };
        Ok(DiskReport {
            path: path.display().to_string(),
            create_type: links[0].create_type.clone(),
            capacity: info.capacity * SECTOR,
            capacity_sectors: info.capacity,
            adapter: info.adapter.map(|a| a.ddb_name()),
            hw_version: disk.metadata("virtualHWVersion").on(path)?,
            uuid: info.uuid,
            geometry: Geometry {
                cylinders: info.geometry.cylinders,
                heads: info.geometry.heads,
                sectors: info.geometry.sectors,
            },
            change_tracking: tracking,
            chain: links,
        })
    })?;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).expect("plain data serializes")
        );
    } else {
        print_text(&report);
    }
    Ok(())
}
