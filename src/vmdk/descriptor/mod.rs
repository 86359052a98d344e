//! The text descriptor: parse from text, render back to text. Pure, no I/O.
//!
//! Rendering follows the byte layout qemu-img, VMware and libvmdk all accept (see
//! docs/decisions.md, "Descriptor text"): signature comment first, `version=1` first key, `CID` before
//! `parentCID`, no spaces in `createType="…"`/`parentFileNameHint="…"`, then the extent
//! section, then the DDB. Keys and lines we do not understand are kept verbatim.

mod encoding;
mod types;

use crate::error::{Error, Result};

pub use encoding::decode_text;
pub use types::is_raw_disk_type;
use types::{check_create_type, unsupported_extent_type};

/// `parentCID` of a disk that has no parent.
pub(crate) const NO_PARENT_CID: u32 = 0xffff_ffff;
/// Largest descriptor file we are willing to parse.
pub(crate) const MAX_DESCRIPTOR_BYTES: usize = 1 << 20;

/// Access mode of an extent line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Readable and writable.
    ReadWrite,
    /// Readable only.
    ReadOnly,
    /// Neither: reads return zeros.
    NoAccess,
}

/// Kind of storage an extent line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentKind {
    /// Hosted sparse ("KDMV") file.
    Sparse,
    /// Raw file at an offset.
    Flat,
    /// No file: reads return zeros.
    Zero,
    /// ESX flat file (raw, like Flat but without an offset).
    Vmfs,
    /// ESX COWD sparse file.
    VmfsSparse,
    /// ESXi 6.5+ seSparse snapshot file (read-only).
    SeSparse,
}

impl ExtentKind {
    fn parse(word: &str) -> Option<ExtentKind> {
        Some(match word.to_ascii_uppercase().as_str() {
            "SPARSE" => ExtentKind::Sparse,
            "FLAT" => ExtentKind::Flat,
            "ZERO" => ExtentKind::Zero,
            "VMFS" => ExtentKind::Vmfs,
            "VMFSSPARSE" => ExtentKind::VmfsSparse,
            "SESPARSE" => ExtentKind::SeSparse,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            ExtentKind::Sparse => "SPARSE",
            ExtentKind::Flat => "FLAT",
            ExtentKind::Zero => "ZERO",
            ExtentKind::Vmfs => "VMFS",
            ExtentKind::VmfsSparse => "VMFSSPARSE",
            ExtentKind::SeSparse => "SESPARSE",
        }
    }
}

/// One line of the extent section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// Access mode.
    pub access: Access,
    /// Size in sectors.
    pub sectors: u64,
    /// Storage kind.
    pub kind: ExtentKind,
    /// File name relative to the descriptor (None for ZERO).
    pub file: Option<String>,
    /// Start offset in sectors inside the file (FLAT only).
    pub offset: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `version=` (1 for normal disks, 3 with change tracking).
    pub version: u32,
    /// `encoding=` if present.
    pub encoding: Option<String>,
    /// Content id of this link.
    pub cid: u32,
    /// Content id of the parent when this link was created, or `NO_PARENT_CID`.
    pub parent_cid: u32,
    /// `createType=`.
    pub create_type: String,
    /// Path of the parent link, relative to this descriptor's directory, if any.
    pub parent_hint: Option<String>,
    /// Header lines we do not interpret, kept verbatim.
    pub extra_header: Vec<String>,
    /// Extents in order.
    pub extents: Vec<ExtentLine>,
    /// Lines between the extents and the DDB that we do not interpret (e.g. change tracking).
    pub extra_sections: Vec<String>,
    /// DDB entries, key without the `ddb.` prefix, in file order.
    pub ddb: Vec<(String, String)>,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

fn parse_hex_u32(v: &str, key: &str) -> Result<u32> {
    u32::from_str_radix(unquote(v), 16)
        .map_err(|_| Error::InvalidDisk(format!("descriptor: bad {key} value {v:?}")))
}

fn parse_extent(line: &str) -> Result<ExtentLine> {
    let bad = || Error::InvalidDisk(format!("descriptor: bad extent line {line:?}"));
    let (head, rest) = match line.find('"') {
        Some(q) => (&line[..q], Some(&line[q + 1..])),
        None => (line, None),
    };
    let mut words = head.split_whitespace();
    let access = match words.next().map(str::to_ascii_uppercase).as_deref() {
        Some("RW") => Access::ReadWrite,
        Some("RDONLY") => Access::ReadOnly,
        Some("NOACCESS") => Access::NoAccess,
        _ => return Err(bad()),
    };
    let sectors: u64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let word = words.next().ok_or_else(bad)?;
    let kind = match ExtentKind::parse(word) {
        Some(kind) => kind,
        None => return Err(unsupported_extent_type(word).unwrap_or_else(bad)),
    };
    let (file, offset) = match rest {
        None => (None, 0),
        Some(r) => {
            let end = r.find('"').ok_or_else(bad)?;
            let tail = r[end + 1..].trim();
            let offset = if tail.is_empty() {
                0
            } else {
                tail.split_whitespace()
                    .next()
                    .and_then(|w| w.parse().ok())
                    .ok_or_else(bad)?
            };
            (Some(r[..end].to_string()), offset)
        }
    };
    if file.is_none() && kind != ExtentKind::Zero {
        return Err(bad());
    }
    Ok(ExtentLine {
        access,
        sectors,
        kind,
        file,
        offset,
    })
}

/// The error for a file whose first bytes are not text: control characters other than tabs
/// anywhere, or bytes that were not UTF-8 (the caller decodes lossily) in a line that is no
/// `key = value` (a value in another encoding is kept, as the descriptor's `encoding` allows).
fn not_text() -> Error {
    Error::InvalidDisk("not a VMDK: binary data where a descriptor was expected".into())
}

impl Descriptor {
    /// Parses descriptor text. Stops at the first NUL (qemu pads descriptors with NULs).
    pub fn parse(text: &str) -> Result<Descriptor> {
        let (text, padding) = text.split_once('\0').unwrap_or((text, ""));
        // NULs pad a descriptor; bytes after NULs with no text before them are another file.
        if text.trim().is_empty() && padding.chars().any(|c| c != '\0') {
            return Err(not_text());
        }
        let mut d = Descriptor {
            version: 0,
            encoding: None,
            cid: 0,
            parent_cid: NO_PARENT_CID,
            create_type: String::new(),
            parent_hint: None,
            extra_header: Vec::new(),
            extents: Vec::new(),
            extra_sections: Vec::new(),
            ddb: Vec::new(),
        };
        let mut saw_version = false;
        // A type we do not read is reported after the whole text is seen, so the createType
        // (the clearer name) wins over an extent line of the same disk.
        let mut unsupported_extent: Option<Error> = None;
        let mut encryption: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim_end_matches('\r').trim();
            // Quoting bytes of some other kind of file helps nobody (and garbles terminals).
            // U+0080..U+009F are windows-1252 text decoded byte for byte (`decode_text`).
            if line
                .chars()
                .any(|c| c.is_control() && c != '\t' && !('\u{80}'..='\u{9f}').contains(&c))
            {
                return Err(not_text());
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let first = line.split_whitespace().next().unwrap_or("");
            if matches!(
                first.to_ascii_uppercase().as_str(),
                "RW" | "RDONLY" | "NOACCESS"
            ) {
                match parse_extent(line) {
                    Ok(e) => d.extents.push(e),
                    Err(e @ Error::NotSupported(_)) => {
                        unsupported_extent.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                if line.contains(char::REPLACEMENT_CHARACTER) {
                    return Err(not_text());
                }
                return Err(Error::InvalidDisk(format!(
                    "descriptor: unexpected line {line:?}"
                )));
            };
            let key = key.trim();
            let lower = key.to_ascii_lowercase();
            if let Some(ddb_key) = lower.strip_prefix("ddb.") {
                let _ = ddb_key;
                d.ddb
                    .push((key[4..].to_string(), unquote(value).to_string()));
                continue;
            }
            match lower.as_str() {
                "version" => {
                    d.version = unquote(value).parse().map_err(|_| {
                        Error::InvalidDisk(format!("descriptor: bad version {value:?}"))
                    })?;
                    saw_version = true;
                }
                "encoding" => d.encoding = Some(unquote(value).to_string()),
                "cid" => d.cid = parse_hex_u32(value, "CID")?,
                "parentcid" => d.parent_cid = parse_hex_u32(value, "parentCID")?,
                "createtype" => d.create_type = unquote(value).to_string(),
                "parentfilenamehint" => d.parent_hint = Some(unquote(value).to_string()),
                _ if lower.starts_with("encryption.") => {
                    encryption.get_or_insert_with(|| key.to_string());
                    d.extra_header.push(line.to_string());
                }
                _ if d.extents.is_empty() => d.extra_header.push(line.to_string()),
                _ => d.extra_sections.push(line.to_string()),
            }
        }
        if let Some(key) = encryption {
            // Workstation keeps an encrypted disk's real descriptor (and its keys) inside
            // encryption.data; without the VM's password there is nothing to read.
            return Err(Error::NotSupported(format!(
                "encrypted disks are not supported (the descriptor has {key})"
            )));
        }
        check_create_type(&d.create_type)?;
        if let Some(e) = unsupported_extent {
            return Err(e);
        }
        if !saw_version || d.extents.is_empty() {
            return Err(Error::InvalidDisk(
                "descriptor has no version line or no extents".into(),
            ));
        }
        if d.version > 3 {
            return Err(Error::UnsupportedVersion(format!(
                "descriptor version {}",
                d.version
            )));
        }
        if d.parent_cid == NO_PARENT_CID {
            d.parent_hint = None;
        }
        Ok(d)
    }

    /// Renders the descriptor as text.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(1024);
        s.push_str("# Disk DescriptorFile\n");
        s.push_str(&format!("version={}\n", self.version));
        if let Some(enc) = &self.encoding {
            s.push_str(&format!("encoding=\"{enc}\"\n"));
        }
        s.push_str(&format!("CID={:08x}\n", self.cid));
        s.push_str(&format!("parentCID={:08x}\n", self.parent_cid));
        s.push_str(&format!("createType=\"{}\"\n", self.create_type));
        if let Some(hint) = &self.parent_hint {
            s.push_str(&format!("parentFileNameHint=\"{hint}\"\n"));
        }
        for line in &self.extra_header {
            s.push_str(line);
            s.push('\n');
        }
        s.push_str("\n# Extent description\n");
        for e in &self.extents {
            let access = match e.access {
                Access::ReadWrite => "RW",
                Access::ReadOnly => "RDONLY",
                Access::NoAccess => "NOACCESS",
            };
            s.push_str(&format!("{access} {} {}", e.sectors, e.kind.as_str()));
            if let Some(f) = &e.file {
                s.push_str(&format!(" \"{f}\""));
            }
            if e.kind == ExtentKind::Flat {
                s.push_str(&format!(" {}", e.offset));
            }
            s.push('\n');
        }
        s.push('\n');
        for line in &self.extra_sections {
            s.push_str(line);
            s.push('\n');
        }
        if !self.extra_sections.is_empty() {
            s.push('\n');
        }
        s.push_str("# The Disk Data Base\n#DDB\n\n");
        for (k, v) in &self.ddb {
            s.push_str(&format!("ddb.{k} = \"{v}\"\n"));
        }
        s
    }

    /// Total capacity in sectors (sum of the extents). Saturates: extent lines are parsed as any
    /// u64, and a hostile descriptor must not overflow the sum (opening checks the real limit).
    pub fn capacity(&self) -> u64 {
        self.extents
            .iter()
            .fold(0u64, |sum, e| sum.saturating_add(e.sectors))
    }

    /// Value of a DDB key (without `ddb.`), compared case-insensitively.
    pub fn ddb_get(&self, key: &str) -> Option<&str> {
        self.ddb
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Removes a DDB key (compared case-insensitively), if present.
    pub fn ddb_remove(&mut self, key: &str) {
        self.ddb.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// Sets a DDB key, replacing an existing one in place or appending.
    pub fn ddb_set(&mut self, key: &str, value: &str) {
        match self
            .ddb
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            Some(entry) => entry.1 = value.to_string(),
            None => self.ddb.push((key.to_string(), value.to_string())),
        }
    }
}

/// Formats 16 bytes the way VMware writes `ddb.uuid`: `60 00 c2 93 7b a0 3a 03-9f 22 56 c5 29 93 b7 27`.
pub fn format_uuid(bytes: [u8; 16]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}", hex[..8].join(" "), hex[8..].join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_STYLE: &str = "# Disk DescriptorFile\nversion=1\nCID=52a1b3c\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 131072 SPARSE \"q.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"130\"\nddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\nddb.toolsVersion = \"2147483647\"\n\0\0\0";

    #[test]
    fn binary_data_is_reported_as_not_a_vmdk_without_quoting_it() {
        let text = String::from_utf8_lossy(b"\x7fELF\x02\x01\x01\xff\xfe garbage\n");
        let e = Descriptor::parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("not a VMDK: binary data where a descriptor was expected"),
            "{e}"
        );
        assert!(!e.contains("ELF"), "{e}");
        // Readable text that is no descriptor is still quoted, so the user can see it.
        let e = Descriptor::parse("hello world\n").unwrap_err().to_string();
        assert!(e.contains("unexpected line \"hello world\""), "{e}");
    }

    #[test]
    fn parses_qemu_descriptor_with_short_cid_and_nul_padding() {
        let d = Descriptor::parse(QEMU_STYLE).unwrap();
        assert_eq!(d.cid, 0x052a1b3c);
        assert_eq!(d.parent_cid, NO_PARENT_CID);
        assert_eq!(d.create_type, "monolithicSparse");
        assert_eq!(d.capacity(), 131072);
        assert_eq!(d.extents[0].file.as_deref(), Some("q.vmdk"));
        assert_eq!(d.ddb_get("adapterType"), Some("ide"));
        assert_eq!(d.ddb_get("GEOMETRY.HEADS"), Some("16"));
    }

    #[test]
    fn render_then_parse_round_trips_and_keeps_unknown_lines() {
        let text = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=12345678\r\nisNativeSnapshot=\"no\"\r\ncreateType=\"twoGbMaxExtentSparse\"\r\nparentFileNameHint=\"..\\\\base\\\\b.vmdk\"\r\n\r\n# Extent description\r\nRW 4192256 SPARSE \"t-s001.vmdk\"\r\nRDONLY 100 FLAT \"f.raw\" 7\r\nNOACCESS 8 ZERO\r\n\r\n# Change Tracking File\r\nchangeTrackPath=\"t-ctk.vmdk\"\r\n\r\n# The Disk Data Base\r\n#DDB\r\n\r\nddb.uuid = \"60 00 C2 93\"\r\nddb.custom.thing = \"x y\"\r\n";
        let d = Descriptor::parse(text).unwrap();
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[1].offset, 7);
        assert_eq!(d.extents[2].kind, ExtentKind::Zero);
        assert_eq!(d.extra_header, vec!["isNativeSnapshot=\"no\""]);
        assert_eq!(d.extra_sections, vec!["changeTrackPath=\"t-ctk.vmdk\""]);
        let again = Descriptor::parse(&d.render()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn rendering_puts_cid_before_parent_cid_and_has_libvmdk_sections() {
        let mut d = Descriptor::parse(QEMU_STYLE).unwrap();
        d.parent_cid = 0xabc;
        d.parent_hint = Some("base.vmdk".into());
        let text = d.render();
        assert!(text.starts_with("# Disk DescriptorFile\nversion=1\n"));
        assert!(text.find("CID=").unwrap() < text.find("parentCID=").unwrap());
        assert!(text.contains("parentFileNameHint=\"base.vmdk\"\n"));
        assert!(text.contains("# Extent description\n"));
        assert!(text.contains("# The Disk Data Base\n"));
        assert!(text.contains("parentCID=00000abc\n"));
    }

    #[test]
    fn capacity_of_enormous_extent_lines_saturates() {
        let d = Descriptor::parse(
            "version=1\nRW 18446744073709551615 ZERO\nRW 18446744073709551615 ZERO\n",
        )
        .unwrap();
        assert_eq!(d.capacity(), u64::MAX);
    }

    #[test]
    fn windows_1252_text_round_trips_byte_for_byte() {
        let bytes = b"version=1\nencoding=\"windows-1252\"\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\nddb.comment = \"Caf\xe9 \x80 \xc3\xa9\"\n";
        let d = Descriptor::parse(&decode_text(bytes)).unwrap();
        let out = d.to_bytes();
        assert!(
            out.windows(9).any(|w| w == b"Caf\xe9 \x80 \xc3\xa9"),
            "{out:?}"
        );
        // UTF-8 text stays UTF-8; invalid UTF-8 without a declared encoding survives decoding.
        let utf8 = "version=1\nencoding=\"UTF-8\"\nRW 8 SPARSE \"\u{e9}.vmdk\"\n";
        assert_eq!(decode_text(utf8.as_bytes()), utf8);
        assert_eq!(
            Descriptor::parse(utf8).unwrap().to_bytes(),
            Descriptor::parse(utf8).unwrap().render().into_bytes()
        );
        assert_eq!(decode_text(b"a\xe9b"), "a\u{e9}b");
    }

    #[test]
    fn types_we_do_not_read_are_not_supported_and_named() {
        for (text, needle) in [
            (
                "version=1\ncreateType=\"vmfsRDM\"\nRW 8 VMFSRDM \"a\"\n",
                "vmfsRDM",
            ),
            (
                "version=1\ncreateType=\"vsanSparse\"\nRW 8 VSANSPARSE \"a\"\n",
                "vsanSparse",
            ),
            (
                "version=1\ncreateType=\"someday\"\nRW 8 FLAT \"a\" 0\n",
                "someday",
            ),
            ("version=1\nRW 8 VMFSRAW \"a\"\n", "VMFSRAW"),
            (
                "version=1\nencryption.keySafe = \"x\"\n",
                "encryption.keySafe",
            ),
        ] {
            match Descriptor::parse(text) {
                Err(Error::NotSupported(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{needle}: {other:?}"),
            }
        }
        // Garbage in the type column is damage, not a type.
        assert!(matches!(
            Descriptor::parse("version=1\nRW 8 \u{fffd}\u{fffd} \"a\"\n"),
            Err(Error::InvalidDisk(_))
        ));
        assert!(
            Descriptor::parse("version=1\ncreateType=\"seSparse\"\nRW 8 SESPARSE \"a\"\n").is_ok()
        );
    }

    #[test]
    fn rejects_garbage_and_missing_extents() {
        assert!(Descriptor::parse("hello world").is_err());
        assert!(Descriptor::parse("version=1\nCID=1\n").is_err());
        assert!(Descriptor::parse("version=1\nRW abc SPARSE \"x\"\n").is_err());
        assert!(Descriptor::parse("version=1\nRW 10 SPARSE\n").is_err());
    }

    #[test]
    fn unknown_extent_types_are_not_supported_rather_than_damaged() {
        let e = Descriptor::parse("version=1\nRW 10 FOOSPARSE \"x\"\n").unwrap_err();
        assert!(matches!(e, Error::NotSupported(_)), "{e:?}");
        let e = Descriptor::parse("version=1\nRW 10 SP\u{1}RSE \"x\"\n").unwrap_err();
        assert!(matches!(e, Error::InvalidDisk(_)), "{e:?}");
    }
}
