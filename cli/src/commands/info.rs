//! `vixdisk info`: type, capacity, adapter, geometry and the chain as a tree.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;
use vixDiskLib::vmdk::extent::ExtentStore;
use vixDiskLib::vmdk::link::Link;

use super::{open_to_read, with_disk};
use crate::failure::CmdResult;
use crate::units::{SECTOR, human_bytes};

/// A descriptor's parentCID when the link has no parent.
const NO_PARENT_CID: u32 = 0xffff_ffff;

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

/// "on" when the link tracks changes our way, "unsupported" when it carries VMware's
/// change-tracking state (which we cannot use), else "off".
fn change_tracking(link: &Link) -> &'static str {
    if link.tracking_file().is_some() {
        return "on";
    }
    let tracked_extent = link.extents().iter().any(|e| match &e.store {
        ExtentStore::Sparse(sp) => sp.header().version == 3 && !sp.header().is_compressed(),
        _ => false,
    });
    let ctk_file = link
        .descriptor()
        .extra_header
        .iter()
        .any(|l| l.trim_start().starts_with("changeTrackPath"));
    if tracked_extent || ctk_file {
        "unsupported"
    } else {
        "off"
    }
}

fn link_info(link: &Link) -> LinkInfo {
    let d = link.descriptor();
    let files = link.files();
    let disk_usage = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.blocks() * 512)
        .sum();
    let has_parent = d.parent_cid != NO_PARENT_CID && d.parent_hint.is_some();
    LinkInfo {
        path: link.path().display().to_string(),
        create_type: d.create_type.clone(),
        cid: format!("{:08x}", d.cid),
        parent_cid: has_parent.then(|| format!("{:08x}", d.parent_cid)),
        parent_hint: if has_parent { d.parent_hint } else { None },
        files: files.iter().map(|f| f.display().to_string()).collect(),
        disk_usage,
        change_tracking: change_tracking(link),
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
        return super::remote::info(path, json);
    }
    let disk = open_to_read(path, force_share)?;
    let report = with_disk(disk, path, |disk| {
        let info = disk.info();
        let chain = disk.chain();
        let links: Vec<LinkInfo> = chain.links.iter().map(link_info).collect();
        let tracking = if disk.is_tracked() {
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
            hw_version: disk.ddb_lookup("virtualHWVersion"),
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
