//! One extent of a link: sparse, COWD, seSparse, flat or zero, positioned at a start sector of the virtual disk.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::cowd::CowdExtent;
use super::descriptor::{Access, ExtentKind};
use super::fd_cache::CachedFile;
use super::fileio::{read_flat_at, write_all_at};
use super::sesparse::SeSparseExtent;
use super::sparse::{GrainMap, SparseExtent};
use crate::error::{Error, Result};

/// The storage behind an extent.
pub enum ExtentStore {
    /// Hosted sparse file.
    Sparse(Box<SparseExtent>),
    /// Raw file; `offset` is the byte offset of the extent's first sector.
    Flat {
        /// Path for messages.
        path: PathBuf,
        /// The file (its descriptor may be closed and reopened by the cache).
        file: CachedFile,
        /// Byte offset of extent sector 0.
        offset: u64,
    },
    /// No storage: reads as zeros.
    Zero,
    /// ESX COWD sparse file (read-only).
    Cowd(Box<CowdExtent>),
    /// ESXi seSparse file (read-only).
    SeSparse(Box<SeSparseExtent>),
}

/// An extent and its place in the virtual disk.
pub struct Extent {
    /// First virtual sector.
    pub start: u64,
    /// Size in sectors.
    pub sectors: u64,
    /// Access from the extent line.
    pub access: Access,
    /// Kind from the extent line.
    pub kind: ExtentKind,
    /// File name as written in the descriptor.
    pub file_name: Option<String>,
    /// Storage.
    pub store: ExtentStore,
}

/// Writes sectors `first..first + count` of a request straight into `file` at a byte offset:
/// `fill(file, path, byte_offset, first, count)` (see `Extent::fill_new`).
pub type DirectFill<'a> = dyn FnMut(&File, &std::path::Path, u64, u64, u64) -> Result<()> + 'a;

/// Where a run of a link's sectors lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// In extent `extent` at byte `offset` of its file.
    Data {
        /// Index of the extent in the link.
        extent: usize,
        /// Byte offset inside the extent file.
        offset: u64,
    },
    /// Reads as zeros, hiding any parent.
    Zero,
    /// Not stored in this link; ask the parent.
    Unallocated,
    /// A compressed grain: inflate the grain whose marker is at `marker`, then skip `skip`
    /// sectors into it.
    Compressed {
        /// Index of the extent in the link.
        extent: usize,
        /// Sector of the grain marker.
        marker: u64,
        /// Sectors into the grain where the mapped run starts.
        skip: u64,
    },
}

impl Extent {
    /// Maps an extent-relative sector (see `Link::map`).
    pub fn map(&self, index: usize, rel: u64, max: u64) -> Result<(Mapping, u64)> {
        let max = max.min(self.sectors - rel);
        if self.access == Access::NoAccess {
            // The descriptor forbids access: reading zeros instead would invent data.
            return Err(Error::AccessDenied(format!(
                "extent {} is NOACCESS",
                self.file_name.as_deref().unwrap_or("(none)")
            )));
        }
        Ok(match &self.store {
            ExtentStore::Zero => (Mapping::Zero, max),
            ExtentStore::Flat { offset, .. } => (
                Mapping::Data {
                    extent: index,
                    offset: offset + rel * 512,
                },
                max,
            ),
            ExtentStore::Sparse(sp) => {
                let (m, n) = sp.map(rel, max)?;
                let m = match m {
                    GrainMap::Data(offset) => Mapping::Data {
                        extent: index,
                        offset,
                    },
                    GrainMap::Zero => Mapping::Zero,
                    GrainMap::Unallocated => Mapping::Unallocated,
                    GrainMap::Compressed(marker) => Mapping::Compressed {
                        extent: index,
                        marker,
                        skip: rel % sp.header().grain_sectors,
                    },
                };
                (m, n)
            }
            ExtentStore::Cowd(c) => {
                let (m, n) = c.map(rel, max)?;
                let m = match m {
                    GrainMap::Data(offset) => Mapping::Data {
                        extent: index,
                        offset,
                    },
                    _ => Mapping::Unallocated,
                };
                (m, n)
            }
            ExtentStore::SeSparse(se) => {
                let (m, n) = se.map(rel, max)?;
                let m = match m {
                    GrainMap::Data(offset) => Mapping::Data {
                        extent: index,
                        offset,
                    },
                    GrainMap::Zero => Mapping::Zero,
                    _ => Mapping::Unallocated,
                };
                (m, n)
            }
        })
    }

    /// The file holding data that `map` located at `Mapping::Data` (sparse and flat extents),
    /// open while the returned descriptor is held. Whoever writes through it calls
    /// `note_written` afterwards, so the next Flush syncs it.
    pub fn data_file(&self) -> Result<Option<(Arc<File>, &std::path::Path)>> {
        Ok(match &self.store {
            ExtentStore::Sparse(sp) => Some((sp.file().get()?, sp.path())),
            ExtentStore::Flat { path, file, .. } => Some((file.get()?, path)),
            ExtentStore::Cowd(_) | ExtentStore::SeSparse(_) | ExtentStore::Zero => None,
        })
    }

    /// The path of the file `data_file` would open.
    pub fn data_path(&self) -> Option<&std::path::Path> {
        match &self.store {
            ExtentStore::Sparse(sp) => Some(sp.path()),
            ExtentStore::Flat { path, .. } => Some(path),
            ExtentStore::Cowd(_) | ExtentStore::SeSparse(_) | ExtentStore::Zero => None,
        }
    }

    /// Notes data written through a descriptor from `data_file` (kernel copies).
    pub fn note_written(&self) {
        match &self.store {
            ExtentStore::Sparse(sp) => sp.file().note_written(),
            ExtentStore::Flat { file, .. } => file.note_written(),
            ExtentStore::Cowd(_) | ExtentStore::SeSparse(_) | ExtentStore::Zero => {}
        }
    }

    /// Places `sectors` new sectors at extent-relative `rel` by letting
    /// `fill(file, path, byte_offset, first, count)` write sectors `first..first + count` of the
    /// request (counted from `rel`) into the file at `byte_offset` directly. Sparse extents need
    /// whole, unallocated grains; returns Ok(false), having done nothing, when this extent
    /// cannot take the data that way (the caller then writes normally).
    pub fn fill_new(&self, rel: u64, sectors: u64, fill: &mut DirectFill<'_>) -> Result<bool> {
        if self.access != Access::ReadWrite {
            return Ok(false);
        }
        match &self.store {
            ExtentStore::Flat { path, file, offset } => {
                fill(&*file.writing()?, path, offset + rel * 512, 0, sectors)?;
                Ok(true)
            }
            ExtentStore::Sparse(sp) => {
                let gs = sp.header().grain_sectors;
                let per = u64::from(sp.header().gtes_per_gt) * gs;
                if !rel.is_multiple_of(gs)
                    || !sectors.is_multiple_of(gs)
                    || sp.header().is_compressed()
                {
                    return Ok(false);
                }
                // One table at a time; each piece is filled at its own place in the file.
                let mut cur = rel;
                while cur < rel + sectors {
                    let n = ((cur / per + 1) * per).min(rel + sectors) - cur;
                    let first = cur - rel;
                    sp.append_grains(cur / gs, n / gs, &mut |f, p, off| fill(f, p, off, first, n))?;
                    cur += n;
                }
                Ok(true)
            }
            ExtentStore::Cowd(_) | ExtentStore::SeSparse(_) | ExtentStore::Zero => Ok(false),
        }
    }

    /// Reads bytes at a file offset obtained from `map`.
    pub fn read_data(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        match &self.store {
            ExtentStore::Sparse(sp) => sp.read_data(buf, offset),
            ExtentStore::Cowd(c) => c.read_data(buf, offset),
            ExtentStore::SeSparse(se) => se.read_data(buf, offset),
            ExtentStore::Flat { path, file, .. } => read_flat_at(&*file.get()?, path, buf, offset),
            ExtentStore::Zero => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    /// True for compressed (streamOptimized) sparse extents.
    pub fn is_compressed(&self) -> bool {
        matches!(&self.store, ExtentStore::Sparse(sp) if sp.header().is_compressed())
    }

    /// True for compressed extents that cannot take any write (streams in a layout that
    /// sequential appends cannot extend).
    pub fn is_write_once(&self) -> bool {
        matches!(&self.store, ExtentStore::Sparse(sp) if sp.header().is_compressed() && !sp.is_appendable_stream())
    }

    /// Reads `buf.len()` bytes of a compressed grain located by `map`.
    pub fn read_compressed(&self, marker: u64, skip: u64, buf: &mut [u8]) -> Result<()> {
        let ExtentStore::Sparse(sp) = &self.store else {
            return Err(Error::InvalidArg(
                "compressed mapping on a non-sparse extent".into(),
            ));
        };
        let mut grain = vec![0u8; sp.grain_bytes()];
        sp.read_compressed(marker, &mut grain)?;
        let at = skip as usize * 512;
        buf.copy_from_slice(&grain[at..at + buf.len()]);
        Ok(())
    }

    /// Writes at an extent-relative sector.
    pub fn write(
        &self,
        rel: u64,
        data: &[u8],
        fill: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
    ) -> Result<()> {
        if self.access != Access::ReadWrite {
            return Err(Error::ReadOnly(format!(
                "extent {} is not writable",
                self.file_name.as_deref().unwrap_or("(zero)")
            )));
        }
        match &self.store {
            ExtentStore::Sparse(sp) => sp.write(rel, data, &mut |s, b| fill(s, b)),
            ExtentStore::Cowd(_) => Err(Error::NotSupported(
                "vmfsSparse (COWD) extents are read-only here".into(),
            )),
            ExtentStore::SeSparse(_) => Err(Error::NotSupported(
                "seSparse extents are read-only here".into(),
            )),
            ExtentStore::Flat { path, file, offset } => {
                write_all_at(&*file.writing()?, path, data, offset + rel * 512)
            }
            ExtentStore::Zero => Err(Error::ReadOnly("zero extents cannot be written".into())),
        }
    }

    /// Calls `visit(rel_sector, sectors)` for the parts of extent sectors `[start, end)` that
    /// hold data in this link (flat and no-access: all of it, so reads reach a no-access
    /// extent and fail there instead of falling through to a parent or to zeros; zero: none).
    pub fn for_each_allocated(
        &self,
        start: u64,
        end: u64,
        visit: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        if self.access == Access::NoAccess {
            if start < end {
                visit(start, end - start);
            }
            return Ok(());
        }
        match &self.store {
            ExtentStore::Sparse(sp) => sp.for_each_allocated(start, end, visit),
            ExtentStore::Cowd(c) => c.for_each_allocated(start, end, visit),
            ExtentStore::SeSparse(se) => se.for_each_allocated(start, end, visit),
            ExtentStore::Flat { .. } => {
                if start < end {
                    visit(start, end - start);
                }
                Ok(())
            }
            ExtentStore::Zero => Ok(()),
        }
    }

    /// Makes written data and metadata durable.
    pub fn flush(&self) -> Result<()> {
        match &self.store {
            ExtentStore::Sparse(sp) => sp.flush_metadata(),
            ExtentStore::Cowd(_) | ExtentStore::SeSparse(_) => Ok(()),
            ExtentStore::Flat { file, .. } => file.sync_data(),
            ExtentStore::Zero => Ok(()),
        }
    }
}
