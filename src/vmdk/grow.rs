//! Growing a closed base disk: sparse extents get a larger grain directory (written at the end
//! of the file before the header switches to it), flat files get longer, split disks get more
//! extents. The descriptor records the new size (and geometry when asked).

use std::path::Path;

use super::create::{
    DiskKind, SPLIT_EXTENT_SECTORS, check_capacity, create_new_file, sibling_name,
};
use super::descriptor::{Access, Descriptor, ExtentKind, ExtentLine, NO_PARENT_CID};
use super::fileio::{file_len, open_regular, read_exact_at, sync_data, write_all_at};
use super::geometry::{Adapter, Geometry};
use super::header::{HEADER_SIZE, SparseHeader};
use super::link::{Link, dir_of};
use super::sparse::write_new_extent;
use crate::error::{Error, Result};

/// Grows a sparse extent file in place to `capacity` sectors. The old directory stays where it
/// is until the header (sector 0, written last) points at the new one. `embedded` is the new
/// text of an embedded descriptor: it goes out in the same write as the header, so a kill
/// never leaves a header and a descriptor that disagree on the capacity.
fn grow_sparse_file(path: &Path, capacity: u64, embedded: Option<&str>) -> Result<()> {
    check_capacity(DiskKind::MonolithicSparse, capacity)?;
    let file = open_regular(path, true)?;
    let len = file_len(&file, path)?;
    let mut first = [0u8; HEADER_SIZE];
    read_exact_at(&file, path, &mut first, 0)?;
    let old = SparseHeader::decode(&first, len.div_ceil(512))?;
    if old.is_compressed() {
        return Err(Error::NotSupported(
            "streamOptimized disks cannot grow".into(),
        ));
    }
    let mut new = old.clone();
    new.capacity = capacity;
    let (old_n, new_n) = (old.gd_entries() as usize, new.gd_entries() as usize);
    let mut gd_bytes = vec![0u8; old_n * 4];
    read_exact_at(&file, path, &mut gd_bytes, old.gd_offset * 512)?;
    let mut rgd_bytes = if old.has_redundant() {
        let mut b = vec![0u8; old_n * 4];
        read_exact_at(&file, path, &mut b, old.rgd_offset * 512)?;
        b
    } else {
        Vec::new()
    };
    let gds = new.gd_sectors();
    let gts = new.gt_sectors();
    let zero_tables = vec![0u8; ((new_n - old_n) as u64 * gts * 512) as usize];
    // New layout at the (grain-aligned) end: [RGD][new RGTs][GD][new GTs].
    let mut at = len.div_ceil(512).next_multiple_of(old.grain_sectors);
    let mut place = |dir: &mut Vec<u8>| -> u64 {
        let dir_at = at;
        dir.resize(new_n * 4, 0);
        for i in old_n..new_n {
            let gt = at + gds + (i - old_n) as u64 * gts;
            dir[i * 4..i * 4 + 4].copy_from_slice(&(gt as u32).to_le_bytes());
        }
        at += gds + (new_n - old_n) as u64 * gts;
        dir_at
    };
    if old.has_redundant() {
        new.rgd_offset = place(&mut rgd_bytes);
        write_all_at(&file, path, &rgd_bytes, new.rgd_offset * 512)?;
        write_all_at(&file, path, &zero_tables, (new.rgd_offset + gds) * 512)?;
    }
    new.gd_offset = place(&mut gd_bytes);
    write_all_at(&file, path, &gd_bytes, new.gd_offset * 512)?;
    write_all_at(&file, path, &zero_tables, (new.gd_offset + gds) * 512)?;
    if at > u64::from(u32::MAX) {
        return Err(Error::InvalidArg(
            "the grown extent would exceed 2 TiB".into(),
        ));
    }
    super::fileio::set_len(&file, path, at.next_multiple_of(old.grain_sectors) * 512)?;
    sync_data(&file, path)?;
    let mut head = new.encode().to_vec();
    if let Some(text) = embedded.filter(|_| new.descriptor_offset != 0) {
        let area = (new.descriptor_size * 512) as usize;
        if text.len() > area {
            return Err(Error::InvalidArg(
                "the grown descriptor does not fit its embedded area".into(),
            ));
        }
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(area, 0);
        if new.descriptor_offset * 512 == head.len() as u64 {
            // Header and descriptor in one write: a text within the first 4 KiB page lands
            // with the header in one piece (the rest of the area stays zeros).
            head.extend_from_slice(&bytes);
        } else {
            write_all_at(&file, path, &bytes, new.descriptor_offset * 512)?;
        }
    }
    write_all_at(&file, path, &head, 0)?;
    sync_data(&file, path)
}

/// Grows the closed base disk at `path` to `capacity` sectors.
pub fn grow(path: &Path, capacity: u64, update_geometry: bool) -> Result<()> {
    let link = Link::open(path, true)?;
    let d = link.descriptor();
    if d.parent_cid != NO_PARENT_CID {
        return Err(Error::NotSupported(
            "a child disk cannot grow on its own: grow the base first".into(),
        ));
    }
    let old = link.capacity();
    let kind = if link.is_monolithic() {
        DiskKind::MonolithicSparse
    } else {
        DiskKind::SplitFlat
    };
    check_capacity(kind, capacity)?;
    if capacity <= old {
        return Err(Error::InvalidArg(format!(
            "new capacity {capacity} is not larger than {old} sectors"
        )));
    }
    if link.extents().iter().any(|e| e.is_compressed()) {
        return Err(Error::NotSupported(
            "streamOptimized disks cannot grow".into(),
        ));
    }
    let dir = dir_of(path);
    let mut extents = d.extents.clone();
    if link.is_monolithic() {
        if let Some(e) = extents.first_mut() {
            e.sectors = capacity;
        }
        let mut grown = d.clone();
        set_extents_and_geometry(&mut grown, &extents, capacity, update_geometry);
        grow_sparse_file(path, capacity, Some(&grown.render()))?;
    } else if d
        .create_type
        .to_ascii_lowercase()
        .starts_with("twogbmaxextent")
    {
        let sparse = d.create_type.eq_ignore_ascii_case("twoGbMaxExtentSparse");
        let (letter, kind) = if sparse {
            ('s', ExtentKind::Sparse)
        } else {
            ('f', ExtentKind::Flat)
        };
        let mut left = capacity - old;
        while left > 0 {
            let n = left.min(SPLIT_EXTENT_SECTORS);
            let name = sibling_name(path, &format!("-{letter}{:03}", extents.len() + 1));
            let p = dir.join(&name);
            // The descriptor does not name this file yet: one that exists was left by a Grow
            // killed before it rewrote the descriptor.
            if std::fs::symlink_metadata(&p).is_ok() {
                super::fileio::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                crate::log::info(format!(
                    "{}: removed an extent left by an interrupted Grow",
                    p.display()
                ));
            }
            let f = create_new_file(&p)?;
            if sparse {
                write_new_extent(&f, &p, &SparseHeader::new_layout(n, 0), None)?;
            } else {
                super::fileio::set_len(&f, &p, n * 512)?;
                sync_data(&f, &p)?;
            }
            extents.push(ExtentLine {
                access: Access::ReadWrite,
                sectors: n,
                kind,
                file: Some(name),
                offset: 0,
            });
            left -= n;
        }
        // The new extents' names are durable before the descriptor names them: a power cut
        // must not leave a descriptor naming a missing file (crash-state explorer, issue 19).
        super::atomic::sync_dir(path)?;
    } else if let [one] = &mut extents[..] {
        let Some(name) = one.file.clone() else {
            return Err(Error::NotSupported("this disk layout cannot grow".into()));
        };
        match one.kind {
            ExtentKind::Flat | ExtentKind::Vmfs => {
                let p = dir.join(name);
                let f = open_regular(&p, true)?;
                super::fileio::set_len(&f, &p, (one.offset + capacity) * 512)?;
                sync_data(&f, &p)?;
            }
            ExtentKind::Sparse => grow_sparse_file(&dir.join(name), capacity, None)?,
            _ => return Err(Error::NotSupported("this disk layout cannot grow".into())),
        }
        one.sectors = capacity;
    } else {
        return Err(Error::NotSupported("this disk layout cannot grow".into()));
    }
    // For a monolithic disk this writes the text already written with the header.
    link.update_descriptor(|d| set_extents_and_geometry(d, &extents, capacity, update_geometry))
}

/// The descriptor of a disk grown to `capacity` with `extents`.
fn set_extents_and_geometry(
    d: &mut Descriptor,
    extents: &[ExtentLine],
    capacity: u64,
    update_geometry: bool,
) {
    d.extents = extents.to_vec();
    if update_geometry {
        let adapter = d
            .ddb_get("adapterType")
            .and_then(Adapter::from_ddb)
            .unwrap_or(Adapter::Ide);
        let g = Geometry::for_capacity(capacity, adapter);
        d.ddb_set("geometry.cylinders", &g.cylinders.to_string());
        d.ddb_set("geometry.heads", &g.heads.to_string());
        d.ddb_set("geometry.sectors", &g.sectors.to_string());
    }
}
