//! The descriptor side of the check: parse, salvage a damaged descriptor line by line, and make
//! an embedded descriptor agree with its header on the capacity.

use std::fs::File;
use std::path::Path;

use super::header::{HeaderState, layout_fits};
use super::{DescriptorWrite, FilePlan, Findings, Parsed, ProblemKind, show};
use crate::error::{Error, Result};
use crate::vmdk::descriptor::{Descriptor, NO_PARENT_CID, is_raw_disk_type};
use crate::vmdk::fileio::read_at_zero_fill;

/// How many damaged lines a finding quotes.
const QUOTED_LINES: usize = 3;

/// Whether `line` is something a descriptor may contain, judged by the engine's own parser.
/// A line that names something we do not support (an unknown extent type, a newer version) is
/// an error, not damage: it must never be dropped, so the whole check stops with that error.
fn line_is_sound(line: &str) -> Result<bool> {
    if line
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == char::REPLACEMENT_CHARACTER)
    {
        return Ok(false);
    }
    if line.starts_with('#') {
        return Ok(true);
    }
    // Wrap the line into a minimal descriptor: it parses only if the line itself does.
    match Descriptor::parse(&format!("version=1\n{line}\nNOACCESS 1 ZERO\n")) {
        Ok(_) => Ok(true),
        Err(e) if is_unsupported(&e) => Err(e),
        Err(_) => Ok(false),
    }
}

/// True for errors that say "we cannot read this kind of disk", as opposed to "this is damaged".
pub(super) fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::NotSupported(_) | Error::UnsupportedVersion(_))
}

fn key_of(line: &str) -> String {
    line.split_once('=')
        .map(|(k, _)| k.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_extent_line(line: &str) -> bool {
    matches!(
        line.split_whitespace()
            .next()
            .map(str::to_ascii_uppercase)
            .as_deref(),
        Some("RW" | "RDONLY" | "NOACCESS")
    )
}

/// What a salvage gives: the descriptor, the dropped lines and whether an extent line was
/// added; or why nothing usable is left.
type Salvaged = std::result::Result<(Descriptor, Vec<String>, bool), String>;

/// Rebuilds a descriptor from the lines of `text` that are sound. `extent` (sectors, file name)
/// supplies the extent line of a monolithic sparse file if every extent line was lost.
///
/// An extent line is never dropped: each one maps a range of the disk, and without it the
/// capacity shrinks and every later extent moves. A damaged extent line therefore makes the
/// descriptor unsalvageable, except in a monolithic sparse file whose only extent (the file
/// itself) is rebuilt from its header. Lines naming what we do not support are an `Err`.
fn salvage(text: &str, extent: Option<(u64, String)>) -> Result<Salvaged> {
    let text = text.split('\0').next().unwrap_or("");
    let mut kept: Vec<String> = Vec::new();
    let mut dropped = Vec::new();
    let mut damaged_extents: Vec<String> = Vec::new();
    let (mut version, mut cid, mut parent_cid, mut extents) = (false, false, false, false);
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() {
            kept.push(String::new());
            continue;
        }
        if !line_is_sound(line)? {
            if is_extent_line(line) {
                damaged_extents.push(raw.chars().take(60).collect::<String>());
            } else {
                dropped.push(raw.chars().take(60).collect());
            }
            continue;
        }
        match key_of(line).as_str() {
            "version" => version = true,
            "cid" => cid = true,
            "parentcid" => parent_cid = true,
            _ if is_extent_line(line) => extents = true,
            _ => {}
        }
        kept.push(line.to_string());
    }
    if !cid || !parent_cid {
        return Ok(Err(
            "its CID or parentCID line is lost, so its place in a chain is unknown".into(),
        ));
    }
    let rebuild = extent.filter(|_| !extents);
    if !damaged_extents.is_empty() && rebuild.is_none() {
        return Ok(Err(format!(
            "extent line {:?} is damaged; dropping it would lose that extent's data and move every later extent",
            damaged_extents[0]
        )));
    }
    dropped.extend(damaged_extents);
    if !version {
        kept.insert(0, "version=1".into());
    }
    let mut added = false;
    if !extents {
        let Some((sectors, name)) = rebuild else {
            return Ok(Err("no extent line is left".into()));
        };
        kept.push(format!("RW {sectors} SPARSE \"{name}\""));
        added = true;
    }
    let d = match Descriptor::parse(&kept.join("\n")) {
        Ok(d) => d,
        Err(e) if is_unsupported(&e) => return Err(e),
        Err(e) => return Ok(Err(e.to_string())),
    };
    if d.parent_cid != NO_PARENT_CID && d.parent_hint.is_none() {
        return Ok(Err("its parentFileNameHint line is lost".into()));
    }
    Ok(Ok((d, dropped, added)))
}

/// A descriptor of a kind we do not read (a createType, an extent type, encryption, a version)
/// is not damage: the check itself fails with that error, and nothing is salvaged from it.
pub(super) fn refuse_unsupported(path: &Path, text: &str) -> Result<()> {
    match Descriptor::parse(text) {
        Err(Error::NotSupported(m)) => Err(Error::NotSupported(format!("{}: {m}", show(path)))),
        Err(Error::UnsupportedVersion(m)) => {
            Err(Error::UnsupportedVersion(format!("{}: {m}", show(path))))
        }
        // Extents on host devices: nothing here to check, and nothing to repair.
        Ok(d) if is_raw_disk_type(&d.create_type) => Err(Error::NotSupported(format!(
            "{}: checking raw-disk descriptors (createType \"{}\") is not supported",
            show(path),
            d.create_type
        ))),
        _ => Ok(()),
    }
}

/// Parses `text`; if it does not parse, salvages it. Records the finding; `None` if nothing
/// usable can be recovered (a fatal finding then). A descriptor naming something we do not
/// support is that error (`VIX_E_NOT_SUPPORTED` or the version error), never damage.
pub(super) fn parse_or_salvage(
    path: &Path,
    text: &str,
    extent: Option<(u64, String)>,
    f: &mut Findings,
) -> Result<Option<Parsed>> {
    let p = show(path);
    let err = match Descriptor::parse(text) {
        Ok(d) => return Ok(Some((d, false))),
        Err(e) if is_unsupported(&e) => return Err(with_path(&p, e)),
        Err(e) => e,
    };
    let salvaged = salvage(text, extent).map_err(|e| with_path(&p, e))?;
    Ok(match salvaged {
        Ok((d, dropped, added)) => {
            let quoted: Vec<String> = dropped
                .iter()
                .take(QUOTED_LINES)
                .map(|l| format!("{l:?}"))
                .collect();
            let mut action = format!(
                "{p}: rewrote the descriptor without its {} damaged line(s)",
                dropped.len()
            );
            if added {
                action.push_str(", with an extent line rebuilt from the header");
            }
            f.fixable(
                ProblemKind::Descriptor,
                format!(
                    "{p}: descriptor does not parse ({err}); damaged lines: {}",
                    quoted.join(", ")
                ),
                action,
            );
            Some((d, true))
        }
        Err(why) => {
            f.fatal(
                ProblemKind::Descriptor,
                format!("{p}: descriptor does not parse ({err}) and cannot be salvaged: {why}"),
            );
            None
        }
    })
}

fn with_path(p: &str, e: Error) -> Error {
    match e {
        Error::NotSupported(m) => Error::NotSupported(format!("{p}: {m}")),
        Error::UnsupportedVersion(m) => Error::UnsupportedVersion(format!("{p}: {m}")),
        other => other,
    }
}

/// Checks the descriptor embedded in a monolithic sparse file and its capacity against the
/// header. Returns false if the file is beyond repair (a fatal finding was recorded).
pub(super) fn check_embedded(
    path: &Path,
    file: &File,
    hs: &mut HeaderState,
    f: &mut Findings,
    plan: &mut FilePlan,
) -> Result<bool> {
    let h = hs.h.clone();
    if h.descriptor_offset == 0 || h.descriptor_size == 0 {
        // A bare sparse extent: it has no descriptor of its own to check.
        return Ok(true);
    }
    let p = show(path);
    let offset = h.descriptor_offset * 512;
    let area = h.descriptor_size * 512;
    let mut bytes = vec![0u8; area as usize];
    read_at_zero_fill(file, path, &mut bytes, offset)?;
    let text = crate::vmdk::descriptor::decode_text(&bytes);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    refuse_unsupported(path, &text)?;
    let Some((mut d, mut rewrite)) = parse_or_salvage(path, &text, Some((h.capacity, name)), f)?
    else {
        return Ok(false);
    };
    if d.extents.len() == 1 && d.extents[0].sectors != h.capacity {
        let desc_cap = d.extents[0].sectors;
        let detail = format!(
            "{p}: descriptor capacity {desc_cap} sectors differs from the header capacity {} sectors",
            h.capacity
        );
        // When both values explain the layout (same number of grain tables), the larger one
        // wins: the smaller would hide sectors a grain table may map, and repair must never
        // make data unreachable.
        let fits_desc = layout_fits(&h, desc_cap);
        if fits_desc && (!layout_fits(&h, h.capacity) || desc_cap > h.capacity) {
            f.fixable(
                ProblemKind::CapacityMismatch,
                format!("{detail}; the directory layout matches the descriptor"),
                format!("{p}: set the header capacity to {desc_cap} sectors"),
            );
            hs.set_capacity(desc_cap);
        } else {
            f.fixable(
                ProblemKind::CapacityMismatch,
                format!("{detail}; the directory layout matches the header"),
                format!(
                    "{p}: set the descriptor's extent line to the header capacity of {} sectors",
                    h.capacity
                ),
            );
            d.extents[0].sectors = h.capacity;
            rewrite = true;
        }
    }
    if rewrite {
        let text = d.render();
        if text.len() as u64 > area {
            f.fatal(
                ProblemKind::Descriptor,
                format!(
                    "{p}: the repaired descriptor ({} bytes) does not fit its {area}-byte area",
                    text.len()
                ),
            );
            return Ok(false);
        }
        plan.descriptor = Some(DescriptorWrite::Embedded { offset, area, text });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 2048 SPARSE \"a.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n";

    #[test]
    fn drops_garbage_lines_and_keeps_the_rest() {
        let text = GOOD.replace("# Extent description", "\u{1}\u{2}garbage\u{fffd}");
        let (d, dropped, added) = salvage(&text, None).unwrap().unwrap();
        assert_eq!(dropped.len(), 1);
        assert!(!added);
        assert_eq!(d.cid, 0x12345678);
        assert_eq!(d.capacity(), 2048);
        assert_eq!(d.ddb_get("adapterType"), Some("lsilogic"));
    }

    #[test]
    fn rebuilds_a_lost_extent_line_only_when_told_how() {
        let text = GOOD.replace("RW 2048 SPARSE \"a.vmdk\"", "RW zz SPARSE");
        assert!(salvage(&text, None).unwrap().is_err());
        let (d, _, added) = salvage(&text, Some((4096, "a.vmdk".into())))
            .unwrap()
            .unwrap();
        assert!(added);
        assert_eq!(d.capacity(), 4096);
    }

    #[test]
    fn refuses_when_the_chain_identity_is_lost() {
        let text = GOOD.replace("parentCID=ffffffff", "\u{fffd}\u{fffd}");
        assert!(salvage(&text, None).unwrap().is_err());
        let child = GOOD.replace("parentCID=ffffffff", "parentCID=0000abcd");
        assert!(salvage(&child, None).unwrap().is_err());
    }
}
