//! The 512-byte hosted sparse extent header ("KDMV"): decode, validate, encode. No I/O here.

use crate::error::{Error, Result};

/// Size of the header on disk.
pub(crate) const HEADER_SIZE: usize = 512;
/// Magic bytes at offset 0.
pub(crate) const MAGIC: &[u8; 4] = b"KDMV";
/// `gdOffset` value meaning "the grain directory is described by the footer" (streamOptimized).
pub(crate) const GD_AT_END: u64 = u64::MAX;

/// Newline bytes are valid and must be checked.
pub(crate) const FLAG_VALID_NEWLINE: u32 = 1 << 0;
/// The redundant grain directory and tables are maintained.
pub(crate) const FLAG_USE_REDUNDANT: u32 = 1 << 1;
/// Grain-table entry 1 means "zeroed grain".
pub(crate) const FLAG_ZEROED_GTE: u32 = 1 << 2;
/// Grains are compressed.
pub(crate) const FLAG_COMPRESSED: u32 = 1 << 16;
/// Grains and metadata carry markers.
pub(crate) const FLAG_MARKERS: u32 = 1 << 17;
/// `compressAlgorithm` value for deflate (zlib streams), the only one defined.
pub(crate) const COMPRESS_DEFLATE: u16 = 1;
/// Incompatible flags this implementation understands.
const KNOWN_INCOMPAT: u32 = FLAG_COMPRESSED | FLAG_MARKERS;

/// Largest grain we accept (qemu's limit, 1 GiB).
pub(crate) const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
/// Largest grain table we accept (qemu's limit).
pub(crate) const MAX_GTES_PER_GT: u32 = 512;
/// Sectors reserved for an embedded descriptor (qemu and VMware use 20).
pub(crate) const EMBEDDED_DESCRIPTOR_SECTORS: u64 = 20;

/// Decoded `SparseExtentHeader`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseHeader {
    /// 1, 2 or 3.
    pub version: u32,
    /// Bit field, see the `FLAG_*` constants.
    pub flags: u32,
    /// Sectors of virtual data in this extent.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_sectors: u64,
    /// Sector of the embedded descriptor, 0 if none.
    pub descriptor_offset: u64,
    /// Sectors reserved for the embedded descriptor.
    pub descriptor_size: u64,
    /// Entries per grain table.
    pub gtes_per_gt: u32,
    /// Sector of the redundant grain directory (valid with `FLAG_USE_REDUNDANT`).
    pub rgd_offset: u64,
    /// Sector of the primary grain directory, or `GD_AT_END`.
    pub gd_offset: u64,
    /// Sectors of metadata before the first grain.
    pub overhead: u64,
    /// Set while the extent is open for writing.
    pub unclean_shutdown: bool,
    /// 0 none, 1 deflate.
    pub compress_algorithm: u16,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// True if a header shows what a text tool does to a binary file: the newline detector is not
/// `"\n \r\n"` and bytes >= 0x80 became U+FFFD (EF BF BD), shifting every field after them.
/// (Damaged detector bytes alone are repairable in place: CheckRepair restores them.)
pub(crate) fn looks_text_mangled(bytes: &[u8]) -> bool {
    let header = &bytes[..HEADER_SIZE.min(bytes.len())];
    header.len() >= 77
        && header[73..77] != *b"\n \r\n"
        && header.windows(3).any(|w| w == [0xef, 0xbf, 0xbd])
}

impl SparseHeader {
    /// True if `bytes` starts with the sparse extent magic.
    pub fn has_magic(bytes: &[u8]) -> bool {
        bytes.len() >= 4 && &bytes[..4] == MAGIC
    }

    /// Decodes and validates a header. `file_sectors` is the extent file's length in sectors,
    /// used to reject headers that point outside the file before anything is allocated.
    pub fn decode(bytes: &[u8], file_sectors: u64) -> Result<SparseHeader> {
        if bytes.len() < HEADER_SIZE || !Self::has_magic(bytes) {
            return Err(Error::InvalidDisk("no sparse extent magic".into()));
        }
        let h = SparseHeader {
            version: u32_at(bytes, 4),
            flags: u32_at(bytes, 8),
            capacity: u64_at(bytes, 12),
            grain_sectors: u64_at(bytes, 20),
            descriptor_offset: u64_at(bytes, 28),
            descriptor_size: u64_at(bytes, 36),
            gtes_per_gt: u32_at(bytes, 44),
            rgd_offset: u64_at(bytes, 48),
            gd_offset: u64_at(bytes, 56),
            overhead: u64_at(bytes, 64),
            unclean_shutdown: bytes[72] != 0,
            compress_algorithm: u16::from_le_bytes([bytes[77], bytes[78]]),
        };
        h.validate(bytes, file_sectors)?;
        Ok(h)
    }

    fn validate(&self, bytes: &[u8], file_sectors: u64) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidDisk(m));
        if looks_text_mangled(bytes) {
            // Checked first: the shifted bytes make every later field nonsense, and the
            // message for those (an unknown version, compression or grain size) would hide
            // the real cause.
            return bad(
                "newline detector bytes damaged and bytes replaced by U+FFFD (text-mode transfer?)"
                    .into(),
            );
        }
        if !(1..=3).contains(&self.version) {
            return Err(Error::UnsupportedVersion(format!(
                "sparse extent version {}",
                self.version
            )));
        }
        let incompat = self.flags & 0xffff_0000;
        if incompat & !KNOWN_INCOMPAT != 0 {
            return Err(Error::UnsupportedVersion(format!(
                "unknown incompatible flags {incompat:#x}"
            )));
        }
        // Deflate is the only algorithm the format defines; guessing at another (or at "none"
        // in a compressed extent) would return garbage as data.
        if self.compress_algorithm > COMPRESS_DEFLATE
            || (self.flags & FLAG_COMPRESSED != 0 && self.compress_algorithm != COMPRESS_DEFLATE)
        {
            return Err(Error::UnsupportedVersion(format!(
                "unknown compression algorithm {}",
                self.compress_algorithm
            )));
        }
        if self.flags & FLAG_MARKERS != 0 && self.flags & FLAG_COMPRESSED == 0 {
            return bad("markers without compression".into());
        }
        if self.flags & FLAG_VALID_NEWLINE != 0 && bytes[73..77] != *b"\n \r\n" {
            return bad("newline detector bytes damaged (text-mode transfer?)".into());
        }
        if !self.grain_sectors.is_power_of_two()
            || self.grain_sectors < 8
            || self.grain_sectors > MAX_GRAIN_SECTORS
        {
            return bad(format!("grain size {} sectors", self.grain_sectors));
        }
        if self.gtes_per_gt == 0 || self.gtes_per_gt > MAX_GTES_PER_GT {
            return bad(format!("{} entries per grain table", self.gtes_per_gt));
        }
        if self.capacity == 0 && self.descriptor_offset == 0 {
            return bad("zero capacity".into());
        }
        // 32-bit sector numbers address at most 2 TiB of extent file.
        if self.capacity > (1u64 << 32) * 64 {
            return bad(format!("capacity {} sectors", self.capacity));
        }
        if self.gd_offset != GD_AT_END {
            let gd_end = self.gd_offset.saturating_add(self.gd_sectors());
            if self.gd_offset == 0 || gd_end > file_sectors {
                return bad(format!(
                    "grain directory at sector {} beyond end of file ({} sectors)",
                    self.gd_offset, file_sectors
                ));
            }
        }
        if self.flags & FLAG_USE_REDUNDANT != 0 && self.gd_offset != GD_AT_END {
            let rgd_end = self.rgd_offset.saturating_add(self.gd_sectors());
            if self.rgd_offset == 0 || rgd_end > file_sectors {
                return bad(format!(
                    "redundant grain directory at sector {} beyond end of file",
                    self.rgd_offset
                ));
            }
        }
        if self.descriptor_offset != 0
            && (self.descriptor_size > 20480
                || self.descriptor_offset.saturating_add(self.descriptor_size) > file_sectors)
        {
            return bad(format!(
                "descriptor at sector {} ({} sectors) outside the file",
                self.descriptor_offset, self.descriptor_size
            ));
        }
        // qemu calls this "File truncated": grains cannot start past the end of the file.
        if self.overhead > file_sectors {
            return bad(format!(
                "metadata claims {} sectors but the file has {file_sectors}",
                self.overhead
            ));
        }
        Ok(())
    }

    /// Virtual sectors covered by one grain table.
    pub fn gt_coverage(&self) -> u64 {
        self.grain_sectors * u64::from(self.gtes_per_gt)
    }

    /// Number of grain-directory entries (grain tables) for this extent.
    pub fn gd_entries(&self) -> u64 {
        self.capacity.div_ceil(self.gt_coverage())
    }

    /// Sectors occupied by one grain directory.
    pub fn gd_sectors(&self) -> u64 {
        (self.gd_entries() * 4).div_ceil(512)
    }

    /// Sectors occupied by one grain table.
    pub fn gt_sectors(&self) -> u64 {
        (u64::from(self.gtes_per_gt) * 4).div_ceil(512)
    }

    /// True if grains are compressed (streamOptimized).
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// True if the redundant directory/tables are kept.
    pub fn has_redundant(&self) -> bool {
        self.flags & FLAG_USE_REDUNDANT != 0 && self.rgd_offset != 0
    }

    /// True if GTE value 1 means a zeroed grain.
    pub fn zeroed_gte(&self) -> bool {
        self.flags & FLAG_ZEROED_GTE != 0
    }

    /// Encodes the header into its 512-byte on-disk form.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..20].copy_from_slice(&self.capacity.to_le_bytes());
        b[20..28].copy_from_slice(&self.grain_sectors.to_le_bytes());
        b[28..36].copy_from_slice(&self.descriptor_offset.to_le_bytes());
        b[36..44].copy_from_slice(&self.descriptor_size.to_le_bytes());
        b[44..48].copy_from_slice(&self.gtes_per_gt.to_le_bytes());
        b[48..56].copy_from_slice(&self.rgd_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        b[64..72].copy_from_slice(&self.overhead.to_le_bytes());
        b[72] = u8::from(self.unclean_shutdown);
        // Always store the newline detector: libvmdk checks it unconditionally.
        b[73..77].copy_from_slice(b"\n \r\n");
        b[77..79].copy_from_slice(&self.compress_algorithm.to_le_bytes());
        b
    }

    /// Layout for a new monolithic or split sparse extent, the way qemu and VMware lay it out:
    /// header, descriptor area, redundant GD + GTs, GD + GTs, padding to a grain boundary.
    pub fn new_layout(capacity: u64, descriptor_sectors: u64) -> SparseHeader {
        let mut h = SparseHeader {
            version: 1,
            flags: FLAG_VALID_NEWLINE | FLAG_USE_REDUNDANT,
            capacity,
            grain_sectors: 128,
            descriptor_offset: if descriptor_sectors > 0 { 1 } else { 0 },
            descriptor_size: descriptor_sectors,
            gtes_per_gt: 512,
            rgd_offset: 0,
            gd_offset: 0,
            overhead: 0,
            unclean_shutdown: false,
            compress_algorithm: 0,
        };
        let tables = h.gd_entries() * h.gt_sectors();
        h.rgd_offset = 1 + descriptor_sectors;
        h.gd_offset = h.rgd_offset + h.gd_sectors() + tables;
        h.overhead = (h.gd_offset + h.gd_sectors() + tables).next_multiple_of(h.grain_sectors);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_64_mib_disk_matches_qemu() {
        let h = SparseHeader::new_layout(131072, 20);
        assert_eq!((h.rgd_offset, h.gd_offset, h.overhead), (21, 30, 128));
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let h = SparseHeader::new_layout(8 * 1024 * 1024, 20);
        let bytes = h.encode();
        assert_eq!(&bytes[0..4], b"KDMV");
        assert_eq!(bytes[73..77], *b"\n \r\n");
        let back = SparseHeader::decode(&bytes, h.overhead).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn rejects_grain_directory_past_end_of_file() {
        let h = SparseHeader::new_layout(131072, 20);
        assert!(matches!(
            SparseHeader::decode(&h.encode(), 25),
            Err(Error::InvalidDisk(_))
        ));
    }

    #[test]
    fn rejects_unknown_incompatible_flag_and_version() {
        let mut h = SparseHeader::new_layout(131072, 20);
        h.flags |= 1 << 20;
        assert!(matches!(
            SparseHeader::decode(&h.encode(), 128),
            Err(Error::UnsupportedVersion(_))
        ));
        h.flags = 3;
        h.version = 4;
        assert!(matches!(
            SparseHeader::decode(&h.encode(), 128),
            Err(Error::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn rejects_oversized_grain_tables_and_bad_grain_size() {
        let mut h = SparseHeader::new_layout(131072, 20);
        h.gtes_per_gt = 1024;
        assert!(SparseHeader::decode(&h.encode(), 1 << 20).is_err());
        let mut h = SparseHeader::new_layout(131072, 20);
        h.grain_sectors = 100;
        assert!(SparseHeader::decode(&h.encode(), 1 << 20).is_err());
    }

    #[test]
    fn damaged_newline_bytes_are_refused() {
        let h = SparseHeader::new_layout(131072, 20);
        let mut b = h.encode();
        b[75] = b'\n';
        assert!(SparseHeader::decode(&b, 128).is_err());
    }
}
