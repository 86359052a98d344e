//! Reading a link's identity (CID, parent CID, parent hint) without opening or locking it:
//! a commit must learn which disks depend on a parent even while they are in use elsewhere.
//! Anything that is not a readable regular VMDK file gives None.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::cowd::CowdExtent;
use super::descriptor::{Descriptor, MAX_DESCRIPTOR_BYTES, NO_PARENT_CID, decode_text};
use super::fileio::read_exact_at;
use super::header::{HEADER_SIZE, SparseHeader};

/// What a link says about itself and its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkIdentity {
    /// The link's CID (0 for legacy COWD files, which have none).
    pub cid: u32,
    /// Its parent's CID when it was created, or `NO_PARENT_CID`.
    pub parent_cid: u32,
    /// The parent hint, for links that have a parent.
    pub parent_hint: Option<String>,
    /// A legacy COWD redo log (its parent is named in its header, without CIDs).
    pub legacy: bool,
}

/// Reads the identity of the link at `path`, or None if it is not a VMDK link we can read.
pub fn peek_link(path: &Path) -> Option<LinkIdentity> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    // Non-blocking: a FIFO swapped in after the check must not hang the caller.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let len = file.metadata().ok()?.len();
    let mut first = vec![0u8; (HEADER_SIZE as u64).max(2048).min(len) as usize];
    read_exact_at(&file, path, &mut first, 0).ok()?;
    if SparseHeader::has_magic(&first) {
        let h = SparseHeader::decode(&first, len.div_ceil(512)).ok()?;
        if h.descriptor_offset == 0 || h.descriptor_size == 0 {
            return None;
        }
        let size = (h.descriptor_size * 512).min(MAX_DESCRIPTOR_BYTES as u64) as usize;
        let mut text = vec![0u8; size];
        read_exact_at(&file, path, &mut text, h.descriptor_offset * 512).ok()?;
        return identity(&Descriptor::parse(&decode_text(&text)).ok()?);
    }
    if CowdExtent::has_magic(&first) {
        let parent = CowdExtent::open(super::fd_cache::CachedFile::pinned(
            std::sync::Arc::new(file),
            path,
            false,
        ))
        .ok()?
        .legacy_parent_name();
        return Some(LinkIdentity {
            cid: 0,
            parent_cid: if parent.is_some() { 0 } else { NO_PARENT_CID },
            parent_hint: parent,
            legacy: true,
        });
    }
    if len as usize > MAX_DESCRIPTOR_BYTES {
        return None;
    }
    let mut text = Vec::with_capacity(len as usize);
    (&file).take(len).read_to_end(&mut text).ok()?;
    identity(&Descriptor::parse(&decode_text(&text)).ok()?)
}

fn identity(d: &Descriptor) -> Option<LinkIdentity> {
    // A text without extents is not a disk (any text file parses leniently).
    if d.extents.is_empty() {
        return None;
    }
    Some(LinkIdentity {
        cid: d.cid,
        parent_cid: d.parent_cid,
        parent_hint: d
            .parent_hint
            .clone()
            .filter(|_| d.parent_cid != NO_PARENT_CID),
        legacy: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_disks_have_no_identity() {
        let d = tempfile::tempdir().unwrap();
        let text = d.path().join("notes.txt");
        std::fs::write(&text, "hello\nworld\n").unwrap();
        assert_eq!(peek_link(&text), None);
        assert_eq!(peek_link(d.path()), None);
        assert_eq!(peek_link(&d.path().join("missing")), None);
    }

    #[test]
    fn a_descriptor_file_gives_its_parent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.vmdk");
        std::fs::write(
            &p,
            "# Disk DescriptorFile\nversion=1\nCID=0000abcd\nparentCID=12345678\n\
             createType=\"monolithicSparse\"\nparentFileNameHint=\"b.vmdk\"\n\
             RW 2048 SPARSE \"c-s.vmdk\"\n",
        )
        .unwrap();
        let id = peek_link(&p).unwrap();
        assert_eq!(id.cid, 0xabcd);
        assert_eq!(id.parent_cid, 0x1234_5678);
        assert_eq!(id.parent_hint.as_deref(), Some("b.vmdk"));
    }
}
