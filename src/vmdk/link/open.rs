//! Opening a link from its first file: a monolithic sparse extent (descriptor embedded), a
//! descriptor file naming its extents, or a legacy COWD redo log described by its header.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::vmdk::fd_cache::CachedFile;

impl Link {
    pub(super) fn open_monolithic(
        path: &Path,
        file: Arc<File>,
        first: &[u8],
        writable: bool,
    ) -> Result<Link> {
        // The extent shares the link's descriptor (which holds the lock): never evicted.
        let extent_file = CachedFile::pinned(Arc::clone(&file), path, writable);
        let sparse = SparseExtent::open(extent_file, first)?;
        let h = sparse.header().clone();
        let (descriptor, home) = if h.descriptor_offset != 0 && h.descriptor_size != 0 {
            let mut text = vec![0u8; (h.descriptor_size * 512) as usize];
            read_exact_at(&file, path, &mut text, h.descriptor_offset * 512)?;
            let d = Descriptor::parse(&decode_text(&text)).map_err(|e| match e {
                Error::InvalidDisk(m) => Error::InvalidDisk(format!("{}: {m}", path.display())),
                other => other,
            })?;
            (
                d,
                DescriptorHome::Embedded {
                    offset: h.descriptor_offset * 512,
                    size: h.descriptor_size * 512,
                },
            )
        } else {
            return Err(Error::NotSupported(format!(
                "{}: a sparse extent without an embedded descriptor must be opened through its descriptor file",
                path.display()
            )));
        };
        let commit_pending = commit_journal(&descriptor).is_some();
        // The embedded extent line may name another file (renamed disks); the data is here.
        let line = descriptor.extents.first().cloned();
        let extent = Extent {
            start: 0,
            sectors: h.capacity,
            access: line.as_ref().map_or(Access::ReadWrite, |l| l.access),
            kind: ExtentKind::Sparse,
            file_name: Some(file_name_of(path)),
            store: ExtentStore::Sparse(Box::new(sparse)),
        };
        Ok(Link {
            path: path.to_path_buf(),
            file,
            descriptor: Mutex::new(descriptor),
            home,
            extents: vec![extent],
            writable,
            session: Mutex::new(Session::default()),
            legacy_redo: false,
            commit_pending,
        })
    }

    pub(super) fn open_descriptor_file(
        path: &Path,
        file: Arc<File>,
        len: u64,
        writable: bool,
    ) -> Result<Link> {
        if len as usize > MAX_DESCRIPTOR_BYTES {
            return Err(Error::InvalidDisk(format!(
                "{}: not a VMDK (no sparse header and too large for a descriptor)",
                path.display()
            )));
        }
        let mut text = vec![0u8; len as usize];
        read_exact_at(&file, path, &mut text, 0)?;
        let descriptor = Descriptor::parse(&decode_text(&text)).map_err(|e| match e {
            Error::InvalidDisk(m) => Error::InvalidDisk(format!("{}: {m}", path.display())),
            Error::NotSupported(m) => Error::NotSupported(format!("{}: {m}", path.display())),
            other => other,
        })?;
        let dir = dir_of(path);
        let raw_disk = is_raw_disk_type(&descriptor.create_type);
        if raw_disk && !raw_devices_allowed() {
            return Err(Error::NotSupported(format!(
                "{}: createType \"{}\" (a raw host disk) is only opened when the InitEx config file sets {ALLOW_RAW_DEVICES_KEY} = \"TRUE\"",
                path.display(),
                descriptor.create_type
            )));
        }
        let mut extents = Vec::with_capacity(descriptor.extents.len());
        let mut start = 0u64;
        for line in &descriptor.extents {
            extents.push(if raw_disk {
                open_raw_disk_extent(&dir, line, start)?
            } else {
                open_extent(&dir, line, start, writable)?
            });
            start = start
                .checked_add(line.sectors)
                .filter(|&end| end <= MAX_CAPACITY_SECTORS)
                .ok_or_else(|| {
                    Error::InvalidDisk(format!(
                        "{}: extents add up to an impossible size",
                        path.display()
                    ))
                })?;
        }
        Ok(Link {
            path: path.to_path_buf(),
            file,
            commit_pending: commit_journal(&descriptor).is_some(),
            descriptor: Mutex::new(descriptor),
            home: DescriptorHome::File,
            extents,
            writable,
            session: Mutex::new(Session::default()),
            legacy_redo: false,
        })
    }

    /// A COWD file without a descriptor: a Workstation 3 / GSX 2 disk or `.REDO` log. Its
    /// header names the parent (if any); the link is read-only (writes are refused).
    pub(super) fn open_legacy_cowd(path: &Path, file: Arc<File>, writable: bool) -> Result<Link> {
        let extent_file = CachedFile::pinned(Arc::clone(&file), path, writable);
        let cowd = CowdExtent::open(extent_file)?;
        let parent = cowd.legacy_parent_name();
        let capacity = cowd.capacity();
        let name = file_name_of(path);
        let descriptor = Descriptor {
            version: 1,
            encoding: None,
            cid: 0,
            // Legacy logs carry no CIDs: any value but NO_PARENT_CID marks "has a parent".
            parent_cid: if parent.is_some() { 0 } else { NO_PARENT_CID },
            create_type: "vmfsSparse".into(),
            parent_hint: parent.clone(),
            extra_header: Vec::new(),
            extents: vec![ExtentLine {
                access: Access::ReadWrite,
                sectors: capacity,
                kind: ExtentKind::VmfsSparse,
                file: Some(name.clone()),
                offset: 0,
            }],
            extra_sections: Vec::new(),
            ddb: Vec::new(),
        };
        Ok(Link {
            path: path.to_path_buf(),
            file,
            descriptor: Mutex::new(descriptor),
            home: DescriptorHome::Synthesized,
            extents: vec![Extent {
                start: 0,
                sectors: capacity,
                access: Access::ReadWrite,
                kind: ExtentKind::VmfsSparse,
                file_name: Some(name),
                store: ExtentStore::Cowd(Box::new(cowd)),
            }],
            writable,
            session: Mutex::new(Session::default()),
            legacy_redo: parent.is_some(),
            commit_pending: false,
        })
    }
}
