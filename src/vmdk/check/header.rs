//! Lenient reading of the sparse header: every field is decoded, each bad one becomes a finding
//! instead of an error, and fixable fields are patched into a copy of the raw bytes.

use std::path::Path;

use super::{Findings, ProblemKind, show};
use crate::error::{Error, Result};
use crate::vmdk::header::{
    FLAG_COMPRESSED, FLAG_MARKERS, FLAG_USE_REDUNDANT, GD_AT_END, HEADER_SIZE, SparseHeader,
};

use crate::vmdk::header::{MAX_GRAIN_SECTORS, MAX_GTES_PER_GT, looks_text_mangled};

/// The newline-detector bytes at offset 73.
const NEWLINES: &[u8; 4] = b"\n \r\n";
/// Largest grain directory accepted (qemu's limit), in entries.
const MAX_GD_ENTRIES: u64 = 32 * 1024 * 1024;
/// Grain and table sectors are 32-bit, so no extent file is larger than this many sectors.
const MAX_FILE_SECTORS: u64 = 1 << 32;
/// Largest embedded descriptor VirtualBox accepts, in sectors.
const MAX_DESCRIPTOR_SECTORS: u64 = 20480;

/// A decoded header, its raw bytes, and the corrections repair will write.
pub(super) struct HeaderState {
    /// The header as the rest of the check should see it (corrections applied).
    pub h: SparseHeader,
    raw: Vec<u8>,
    fix_newline: bool,
    clear_unclean: bool,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Decodes the fields without any validation.
pub(super) fn decode_raw(b: &[u8]) -> SparseHeader {
    SparseHeader {
        version: u32_at(b, 4),
        flags: u32_at(b, 8),
        capacity: u64_at(b, 12),
        grain_sectors: u64_at(b, 20),
        descriptor_offset: u64_at(b, 28),
        descriptor_size: u64_at(b, 36),
        gtes_per_gt: u32_at(b, 44),
        rgd_offset: u64_at(b, 48),
        gd_offset: u64_at(b, 56),
        overhead: u64_at(b, 64),
        unclean_shutdown: b[72] != 0,
        compress_algorithm: u16::from_le_bytes([b[77], b[78]]),
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

impl HeaderState {
    /// The header bytes to write back, if anything changed.
    pub fn patched(&self) -> Option<Vec<u8>> {
        let mut b = self.raw.clone();
        b[8..12].copy_from_slice(&self.h.flags.to_le_bytes());
        b[12..20].copy_from_slice(&self.h.capacity.to_le_bytes());
        if self.clear_unclean {
            b[72] = 0;
        }
        if self.fix_newline {
            b[73..77].copy_from_slice(NEWLINES);
        }
        (b != self.raw).then_some(b)
    }

    /// Sets the capacity repair will write (the directory size follows from it).
    pub fn set_capacity(&mut self, capacity: u64) {
        self.h.capacity = capacity;
    }
}

/// True if `capacity` explains the directory layout the header describes, the way qemu,
/// VMware and this engine lay it out (directory, then its tables; overhead rounded to a grain).
pub(super) fn layout_fits(h: &SparseHeader, capacity: u64) -> bool {
    let mut t = h.clone();
    t.capacity = capacity;
    let tables = t.gd_entries() * t.gt_sectors();
    let gd_end = t.gd_offset + t.gd_sectors() + tables;
    let overhead_ok = t.overhead == gd_end.next_multiple_of(t.grain_sectors);
    if t.flags & FLAG_USE_REDUNDANT != 0 && t.rgd_offset != 0 {
        overhead_ok && t.gd_offset == t.rgd_offset + t.gd_sectors() + tables
    } else {
        overhead_ok
    }
}

/// Checks the header of the sparse file at `path`. Returns `None` if it is beyond repair (the
/// finding is recorded); the tree cannot be checked then.
pub(super) fn check(
    path: &Path,
    first: &[u8],
    len: u64,
    f: &mut Findings,
) -> Result<Option<HeaderState>> {
    let p = show(path);
    if len < HEADER_SIZE as u64 || !SparseHeader::has_magic(first) {
        f.fatal(
            ProblemKind::Header,
            format!("{p}: no sparse extent header (KDMV magic) at offset 0"),
        );
        return Ok(None);
    }
    let h = decode_raw(first);
    let mut fatal = |what: String| {
        f.fatal(ProblemKind::Header, format!("{p}: header: {what}"));
        Ok(None)
    };
    // A text tool replaced bytes and shifted every field after them: nothing here can be
    // trusted or put back (the replaced bytes are gone), and the version or flags it now shows
    // are not a newer format.
    if looks_text_mangled(first) {
        return fatal(
            "newline detector and bytes >= 0x80 mangled (text-mode transfer?); the original bytes are lost"
                .into(),
        );
    }
    // A newer version, an unknown incompatible flag or compression algorithm is a format we do
    // not know, refused as the opener refuses it (VIX_E_DISK_UNSUPPORTEDDISKVERSION): calling it
    // damage would invite a "repair" of a disk that is fine for the program that wrote it.
    if h.version > 3 {
        return Err(Error::UnsupportedVersion(format!(
            "{p}: sparse header version {} (1 to 3 are supported)",
            h.version
        )));
    }
    if h.version == 0 {
        return fatal("version 0 (1 to 3 exist)".into());
    }
    let incompat = h.flags & 0xffff_0000;
    if incompat & !(FLAG_COMPRESSED | FLAG_MARKERS) != 0 {
        return Err(Error::UnsupportedVersion(format!(
            "{p}: sparse header has unknown incompatible flags {incompat:#x}"
        )));
    }
    // The opener refuses algorithms other than none/deflate; so must the checker.
    if h.compress_algorithm > 1 {
        return Err(Error::UnsupportedVersion(format!(
            "{p}: sparse header names unknown compression algorithm {}",
            h.compress_algorithm
        )));
    }
    if h.flags & FLAG_COMPRESSED != 0 || h.gd_offset == GD_AT_END {
        return Err(Error::NotSupported(format!(
            "{p}: checking streamOptimized (compressed) extents is not supported"
        )));
    }
    if h.flags & FLAG_MARKERS != 0 {
        return fatal("markers flag without compression".into());
    }
    if !h.grain_sectors.is_power_of_two()
        || h.grain_sectors < 8
        || h.grain_sectors > MAX_GRAIN_SECTORS
    {
        return fatal(format!("grain size {} sectors", h.grain_sectors));
    }
    if h.gtes_per_gt == 0 || h.gtes_per_gt > MAX_GTES_PER_GT {
        return fatal(format!("{} entries per grain table", h.gtes_per_gt));
    }
    if h.capacity == 0 || h.capacity > MAX_FILE_SECTORS * 64 {
        return fatal(format!("capacity {} sectors", h.capacity));
    }
    if h.gd_entries() > MAX_GD_ENTRIES {
        return fatal(format!(
            "{} grain directory entries (capacity {} sectors)",
            h.gd_entries(),
            h.capacity
        ));
    }
    if h.overhead > MAX_FILE_SECTORS {
        return fatal(format!("overHead {} sectors", h.overhead));
    }
    let file_sectors = len.div_ceil(512);
    let reach = file_sectors.max(h.overhead);
    let desc = (
        h.descriptor_offset,
        h.descriptor_offset.saturating_add(h.descriptor_size),
    );
    if h.descriptor_offset != 0 && (h.descriptor_size > MAX_DESCRIPTOR_SECTORS || desc.1 > reach) {
        return fatal(format!(
            "descriptor area at sector {} of {} sectors lies outside the file",
            h.descriptor_offset, h.descriptor_size
        ));
    }
    let gds = h.gd_sectors();
    let gd = (h.gd_offset, h.gd_offset.saturating_add(gds));
    if h.gd_offset == 0 || gd.1 > reach || (h.descriptor_offset != 0 && overlaps(gd, desc)) {
        return fatal(format!(
            "grain directory at sector {} is outside the file or over the descriptor",
            h.gd_offset
        ));
    }
    let mut st = HeaderState {
        h,
        raw: first[..HEADER_SIZE].to_vec(),
        fix_newline: false,
        clear_unclean: false,
    };
    if st.h.flags & FLAG_USE_REDUNDANT != 0 {
        let rgd = (st.h.rgd_offset, st.h.rgd_offset.saturating_add(gds));
        if st.h.rgd_offset == 0
            || rgd.1 > reach
            || overlaps(rgd, gd)
            || (st.h.descriptor_offset != 0 && overlaps(rgd, desc))
        {
            f.fixable(
                ProblemKind::Header,
                format!(
                    "{p}: header: redundant grain directory at sector {} is outside the file or over other metadata",
                    st.h.rgd_offset
                ),
                format!(
                    "{p}: cleared the redundant-directory flag (the primary tree is intact and is kept)"
                ),
            );
            st.h.flags &= !FLAG_USE_REDUNDANT;
        }
    }
    if first[73..77] != *NEWLINES {
        f.fixable(
            ProblemKind::NewlineDetector,
            format!(
                "{p}: header newline-detector bytes are {:02x?}, not 0a 20 0d 0a (text-mode transfer?)",
                &first[73..77]
            ),
            format!("{p}: restored the newline-detector bytes"),
        );
        st.fix_newline = true;
    }
    if first[72] != 0 {
        f.fixable(
            ProblemKind::UncleanShutdown,
            format!("{p}: uncleanShutdown flag is set (the disk was not closed cleanly)"),
            format!("{p}: cleared the uncleanShutdown flag after the check"),
        );
        st.clear_unclean = true;
    }
    Ok(Some(st))
}

/// For an extent named by a descriptor file: the header must hold at least the sectors the
/// extent line gives it. Returns false if the mismatch is beyond repair.
pub(super) fn check_extent_capacity(
    path: &Path,
    st: &mut HeaderState,
    line_sectors: u64,
    f: &mut Findings,
) -> bool {
    let cap = st.h.capacity;
    if cap >= line_sectors {
        return true;
    }
    let p = show(path);
    let detail = format!(
        "{p}: header capacity {cap} sectors is less than the {line_sectors} sectors of its extent line"
    );
    let mut raised = st.h.clone();
    raised.capacity = line_sectors;
    if layout_fits(&st.h, line_sectors) || raised.gd_entries() == st.h.gd_entries() {
        f.fixable(
            ProblemKind::CapacityMismatch,
            detail,
            format!("{p}: set the header capacity to {line_sectors} sectors"),
        );
        st.set_capacity(line_sectors);
        true
    } else {
        f.fatal(ProblemKind::CapacityMismatch, detail);
        false
    }
}
