//! Disk geometry and adapter names: how a new disk's CHS values are derived from its capacity.

/// Virtual controller a disk is attached to (stored as `ddb.adapterType`).
///
/// ```
/// let opts = vixDiskLib::CreateOptions { adapter: vixDiskLib::Adapter::Ide,
///     ..vixDiskLib::CreateOptions::new(vixDiskLib::DiskKind::MonolithicSparse, 2048) };
/// assert_eq!(opts.adapter.ddb_name(), "ide");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// IDE.
    Ide,
    /// BusLogic SCSI.
    BusLogic,
    /// LSI Logic SCSI.
    LsiLogic,
    /// ESX legacy.
    LegacyEsx,
}

impl Adapter {
    /// The DDB spelling.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::Adapter::LsiLogic.ddb_name(), "lsilogic");
    /// ```
    pub fn ddb_name(self) -> &'static str {
        match self {
            Adapter::Ide => "ide",
            Adapter::BusLogic => "buslogic",
            Adapter::LsiLogic => "lsilogic",
            Adapter::LegacyEsx => "legacyESX",
        }
    }

    /// Parses a DDB value (case-insensitive).
    ///
    /// ```
    /// use vixDiskLib::Adapter;
    /// assert_eq!(Adapter::from_ddb("BusLogic"), Some(Adapter::BusLogic));
    /// assert_eq!(Adapter::from_ddb("floppy"), None);
    /// ```
    pub fn from_ddb(v: &str) -> Option<Adapter> {
        Some(match v.to_ascii_lowercase().as_str() {
            "ide" => Adapter::Ide,
            "buslogic" => Adapter::BusLogic,
            "lsilogic" | "lsisas1068" | "pvscsi" => Adapter::LsiLogic,
            "legacyesx" => Adapter::LegacyEsx,
            _ => return None,
        })
    }
}

/// Cylinders/heads/sectors.
///
/// ```
/// use vixDiskLib::{Adapter, Geometry};
/// let g = Geometry::for_capacity(2048, Adapter::Ide);
/// assert_eq!((g.heads, g.sectors), (16, 63));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u32,
    /// Heads.
    pub heads: u32,
    /// Sectors per track.
    pub sectors: u32,
}

impl Geometry {
    /// The geometry VMware products give a new disk: IDE uses 16 heads × 63 sectors with at
    /// most 16383 cylinders; SCSI uses 64×32 below 1 GiB, 128×32 below 2 GiB, else 255×63.
    ///
    /// ```
    /// let g = vixDiskLib::Geometry::for_capacity(1 << 21, vixDiskLib::Adapter::LsiLogic);
    /// assert_eq!((g.heads, g.sectors), (128, 32));
    /// ```
    pub fn for_capacity(capacity: u64, adapter: Adapter) -> Geometry {
        let (heads, sectors, max_cyl) = match adapter {
            Adapter::Ide => (16, 63, 16383),
            _ if capacity < 2 * 1024 * 1024 => (64, 32, u32::MAX),
            _ if capacity < 4 * 1024 * 1024 => (128, 32, u32::MAX),
            _ => (255, 63, u32::MAX),
        };
        let cyl = capacity / (u64::from(heads) * u64::from(sectors));
        Geometry {
            cylinders: cyl.min(u64::from(max_cyl)) as u32,
            heads,
            sectors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundred_mib_buslogic_disk_gets_64_heads_32_sectors() {
        let g = Geometry::for_capacity(100 * 2048, Adapter::BusLogic);
        assert_eq!((g.cylinders, g.heads, g.sectors), (100, 64, 32));
    }

    #[test]
    fn big_ide_disk_caps_cylinders() {
        let g = Geometry::for_capacity(1 << 40, Adapter::Ide);
        assert_eq!((g.cylinders, g.heads, g.sectors), (16383, 16, 63));
    }

    #[test]
    fn big_scsi_disk_uses_255_heads() {
        let g = Geometry::for_capacity(16 * 1024 * 1024 * 2, Adapter::LsiLogic);
        assert_eq!((g.heads, g.sectors), (255, 63));
        assert_eq!(g.cylinders, 2088);
    }
}
