//! Parsing of the values users type: sizes, disk type names, adapter names.

use std::fmt;
use std::str::FromStr;

use vixDiskLib::Adapter as EngineAdapter;
use vixDiskLib::DiskKind;

/// Bytes per sector.
pub const SECTOR: u64 = 512;

/// A size as bytes, or with a K/M/G/T suffix (powers of 1024); must be whole sectors.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512, 64M, 10G)"))?;
    let shift = match unit.to_ascii_lowercase().trim_end_matches(['b', 'i']) {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M, G or T)")),
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes == 0 || !bytes.is_multiple_of(SECTOR) {
        return Err(format!("{s:?} is not a positive multiple of 512 bytes"));
    }
    Ok(bytes)
}

/// `1.5 GiB`-style rendering of a byte count.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What a command should create: a VMDK of some type, or a plain raw image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    /// A VMDK layout.
    Vmdk(DiskKind),
    /// A raw image.
    Raw,
}

/// Accepted names: VMware's `createType` spellings, short names, and vmware-vdiskmanager's
/// `-t` numbers.
const TYPE_NAMES: &[(&str, DiskType)] = &[
    (
        "monolithicSparse",
        DiskType::Vmdk(DiskKind::MonolithicSparse),
    ),
    ("0", DiskType::Vmdk(DiskKind::MonolithicSparse)),
    ("sparse", DiskType::Vmdk(DiskKind::MonolithicSparse)),
    (
        "twoGbMaxExtentSparse",
        DiskType::Vmdk(DiskKind::SplitSparse),
    ),
    ("1", DiskType::Vmdk(DiskKind::SplitSparse)),
    ("splitSparse", DiskType::Vmdk(DiskKind::SplitSparse)),
    ("monolithicFlat", DiskType::Vmdk(DiskKind::MonolithicFlat)),
    ("2", DiskType::Vmdk(DiskKind::MonolithicFlat)),
    ("flat", DiskType::Vmdk(DiskKind::MonolithicFlat)),
    ("twoGbMaxExtentFlat", DiskType::Vmdk(DiskKind::SplitFlat)),
    ("3", DiskType::Vmdk(DiskKind::SplitFlat)),
    ("splitFlat", DiskType::Vmdk(DiskKind::SplitFlat)),
    ("vmfs", DiskType::Vmdk(DiskKind::VmfsFlat)),
    ("4", DiskType::Vmdk(DiskKind::VmfsFlat)),
    ("streamOptimized", DiskType::Vmdk(DiskKind::StreamOptimized)),
    ("5", DiskType::Vmdk(DiskKind::StreamOptimized)),
    ("stream", DiskType::Vmdk(DiskKind::StreamOptimized)),
    ("vmfsThin", DiskType::Vmdk(DiskKind::VmfsThin)),
    ("thin", DiskType::Vmdk(DiskKind::VmfsThin)),
    ("raw", DiskType::Raw),
];

impl FromStr for DiskType {
    type Err = String;
    fn from_str(s: &str) -> Result<DiskType, String> {
        TYPE_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, t)| t)
            .ok_or_else(|| {
                format!(
                    "unknown disk type {s:?}; one of monolithicSparse, monolithicFlat, \
                     twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs, vmfsThin, streamOptimized, raw"
                )
            })
    }
}

impl fmt::Display for DiskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = TYPE_NAMES
            .iter()
            .find(|(_, t)| t == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// A disk controller name as users type it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adapter(pub EngineAdapter);

impl FromStr for Adapter {
    type Err = String;
    fn from_str(s: &str) -> Result<Adapter, String> {
        match EngineAdapter::from_ddb(s) {
            Some(a @ (EngineAdapter::Ide | EngineAdapter::BusLogic | EngineAdapter::LsiLogic)) => {
                Ok(Adapter(a))
            }
            _ => Err(format!(
                "unknown adapter {s:?}; one of ide, buslogic, lsilogic"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_whole_sectors() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("100").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("99999999999999999999T").is_err());
    }

    #[test]
    fn type_names_round_trip() {
        for (name, t) in TYPE_NAMES {
            assert_eq!(name.parse::<DiskType>().as_ref(), Ok(t));
            assert_eq!(t.to_string().parse::<DiskType>().as_ref(), Ok(t));
        }
        assert_eq!(
            "STREAMOPTIMIZED".parse::<DiskType>(),
            Ok(DiskType::Vmdk(DiskKind::StreamOptimized))
        );
        assert!("qcow2".parse::<DiskType>().is_err());
    }
}
