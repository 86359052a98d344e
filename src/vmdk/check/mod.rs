//! Consistency check and repair of hosted VMDK disks (`VixDiskLib_CheckRepair`).
//!
//! The checker opens the files itself, leniently: the engine's `Link::open` refuses exactly the
//! damaged files this module exists for. It looks at one link (a monolithic sparse file or a
//! descriptor file and its extents) and never follows parents.
//!
//! What is checked: the sparse header (magic, version, flags, grain size, entries per table,
//! directory offsets, newline detector, unclean-shutdown flag), the descriptor (parses; extent
//! files exist and are long enough; its capacity agrees with the header), both grain-directory
//! trees (each index 0 in both copies or non-zero and distinct in both; tables byte-identical;
//! tables inside the file and clear of other metadata), and every grain-table entry (inside the
//! file, clear of metadata, no grain referenced twice). Compressed (streamOptimized) extents
//! are checked marker by marker in `stream` and, when damaged, rebuilt by `salvage`.
//!
//! Repair never drops data that a reader could reach, and only turns what cannot be read into
//! what reads as it was (docs/decisions.md has the audit of every action): a damaged copy of a
//! directory entry or table is rebuilt from the other copy; an entry that is unusable in both
//! copies (past the end of the file, inside metadata) is zeroed; the later of two entries
//! sharing one grain gets its own copy of it. Extent lines are never removed and a capacity is
//! never lowered; what we do not support (an unknown extent type, a newer version) is that
//! error, not damage. Writes go grain copies first, then tables, then directories, then the
//! descriptor, then the header (newline bytes, unclean flag), each group followed by an fsync.
//! If anything is beyond repair (a missing extent file, a destroyed header, a grain table lost
//! in both copies, a damaged extent line) nothing at all is written, so the evidence stays as
//! it was for whoever recovers the disk by hand.

mod descriptor;
mod header;
mod repair;
mod report;
mod salvage;
mod stream;
mod stream_scan;
mod stream_tables;
mod tables;
mod tree;

use std::fs::File;
use std::path::{Path, PathBuf};

use super::descriptor::{Descriptor, ExtentKind, MAX_DESCRIPTOR_BYTES};
use super::fileio::{file_len, open_regular, read_at_zero_fill};
use super::header::{HEADER_SIZE, SparseHeader};
use super::link::dir_of;
use super::link_files::{MAX_CAPACITY_SECTORS, extent_path, lock_file};
use super::sesparse::{SeSparseExtent, SeSparseHeader};
use crate::error::{Error, Result};
use crate::log;

pub use report::{CheckReport, Outcome, Problem, ProblemKind, SalvageCounts};

/// Problems and the repair actions planned for them, collected while checking.
#[derive(Default)]
pub(crate) struct Findings {
    problems: Vec<Problem>,
    actions: Vec<String>,
}

impl Findings {
    /// Records a problem that repair fixes by doing `action`.
    fn fixable(&mut self, kind: ProblemKind, detail: String, action: String) {
        log::warn(&detail);
        self.problems.push(Problem {
            kind,
            detail,
            fixable: true,
        });
        self.actions.push(action);
    }

    /// Records a problem that cannot be fixed without losing data.
    fn fatal(&mut self, kind: ProblemKind, detail: String) {
        log::warn(format!("{detail} (cannot be repaired)"));
        self.problems.push(Problem {
            kind,
            detail,
            fixable: false,
        });
    }

    fn unrepairable(&self) -> bool {
        self.problems.iter().any(|p| !p.fixable)
    }
}

/// Where a rewritten descriptor goes.
pub(crate) enum DescriptorWrite {
    /// Embedded in a sparse file: `area` bytes at byte `offset`, NUL padded.
    Embedded {
        /// Byte offset of the area.
        offset: u64,
        /// Bytes reserved.
        area: u64,
        /// The new text.
        text: String,
    },
    /// A descriptor file, replaced atomically.
    File(String),
}

/// The writes repair makes to one file, applied in crash-safe order (see `repair`).
#[derive(Default)]
pub(crate) struct FilePlan {
    path: PathBuf,
    extend_to: Option<u64>,
    /// (from, to, bytes): copies of shared grains into new grains, written before any table.
    grain_copies: Vec<(u64, u64, u64)>,
    tables: Vec<(u64, Vec<u8>)>,
    directories: Vec<(u64, Vec<u8>)>,
    descriptor: Option<DescriptorWrite>,
    header: Option<Vec<u8>>,
    /// A stream rebuilt beside the file and swapped in (instead of all of the above).
    salvage: Option<salvage::Salvage>,
}

impl FilePlan {
    fn new(path: &Path) -> FilePlan {
        FilePlan {
            path: path.to_path_buf(),
            ..FilePlan::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.extend_to.is_none()
            && self.grain_copies.is_empty()
            && self.tables.is_empty()
            && self.directories.is_empty()
            && self.descriptor.is_none()
            && self.header.is_none()
            && self.salvage.is_none()
    }
}

/// Checks the link at `path` and, with `repair`, fixes what can be fixed without data loss.
///
/// Errors are for failures of the check itself (the file cannot be opened, is locked, an I/O
/// error, a format this checker does not know); damage is reported in the `CheckReport`.
pub fn check_disk(path: &Path, repair: bool) -> Result<CheckReport> {
    check_link(path, repair, true)
}

/// Checks the link at `path` without taking its lock (never repairs), so a disk another
/// process has open for writing can be checked; what it finds may be that writer's
/// half-finished update rather than damage.
pub fn check_disk_force_share(path: &Path) -> Result<CheckReport> {
    check_link(path, false, false)
}

fn check_link(path: &Path, repair: bool, take_lock: bool) -> Result<CheckReport> {
    let lock_holder = open_regular(path, false)?;
    if take_lock {
        lock_file(&lock_holder, path, repair)?;
    }
    log::info(format!(
        "checking {}{}",
        path.display(),
        if repair { " (repair)" } else { "" }
    ));
    let (findings, plans) = analyze(path)?;
    let mut report = CheckReport {
        unrepairable: findings.unrepairable(),
        problems: findings.problems,
        repaired: Vec::new(),
        salvage: plans
            .iter()
            .find_map(|p| p.salvage.as_ref())
            .map(|s| SalvageCounts {
                grains: s.grains.len() as u64,
                recovered_sectors: s.recovered,
                lost_sectors: s.lost,
            }),
    };
    if report.problems.is_empty() {
        log::info(format!("{}: no problems found", path.display()));
        return Ok(report);
    }
    if report.unrepairable {
        log::warn(format!(
            "{}: damage beyond repair found; nothing was changed",
            path.display()
        ));
        return Ok(report);
    }
    if !repair {
        if report.is_damaged() {
            log::warn(format!(
                "{}: {} problem(s) found; run CheckRepair with repair to fix them",
                path.display(),
                report.problems.len()
            ));
        } else {
            log::info(format!(
                "{}: metadata is consistent; only the marks of an interrupted session are left (repair clears them)",
                path.display()
            ));
        }
        return Ok(report);
    }
    repair::apply(&plans)?;
    for action in &findings.actions {
        log::info(format!("repaired: {action}"));
    }
    report.repaired = findings.actions;
    // Verify: a second pass must find nothing. Anything left is our failure, reported as such.
    let (after, _) = analyze(path)?;
    for p in after.problems {
        log::warn(format!("still damaged after repair: {}", p.detail));
        report.unrepairable = true;
        report.problems.push(Problem {
            fixable: false,
            detail: format!("still present after repair: {}", p.detail),
            ..p
        });
    }
    drop(lock_holder);
    Ok(report)
}

/// Reads the link without changing it: what is wrong, and the writes that would fix it.
fn analyze(path: &Path) -> Result<(Findings, Vec<FilePlan>)> {
    let mut f = Findings::default();
    let mut plans = Vec::new();
    let file = open_ro(path)?;
    let len = file_len(&file, path)?;
    let mut first = vec![0u8; HEADER_SIZE];
    read_at_zero_fill(&file, path, &mut first, 0)?;
    if SparseHeader::has_magic(&first) {
        let mut plan = FilePlan::new(path);
        check_sparse_file(path, &file, len, &first, None, &mut f, &mut plan)?;
        plans.push(plan);
    } else if first.starts_with(b"COWD") {
        return Err(Error::NotSupported(format!(
            "{}: checking vmfsSparse (COWD) extents is not supported",
            path.display()
        )));
    } else if SeSparseHeader::has_magic(&first) {
        return Err(Error::NotSupported(format!(
            "{}: a seSparse extent is checked through its descriptor file",
            path.display()
        )));
    } else {
        check_descriptor_file(path, &file, len, &mut f, &mut plans)?;
    }
    plans.retain(|p| !p.is_empty());
    Ok((f, plans))
}

fn open_ro(path: &Path) -> Result<File> {
    open_regular(path, false)
}

/// What the descriptor says about a sparse extent it names.
struct ExpectedExtent {
    sectors: u64,
}

/// Checks one KDMV file. `expected` is set for extents named by a descriptor file; `None`
/// means a monolithic file whose own embedded descriptor is checked too.
fn check_sparse_file(
    path: &Path,
    file: &File,
    len: u64,
    first: &[u8],
    expected: Option<ExpectedExtent>,
    f: &mut Findings,
    plan: &mut FilePlan,
) -> Result<()> {
    if stream::is_stream(first) {
        return stream::check(path, file, len, first, f, plan);
    }
    let Some(mut hs) = header::check(path, first, len, f)? else {
        return Ok(());
    };
    match expected {
        None => {
            if !descriptor::check_embedded(path, file, &mut hs, f, plan)? {
                return Ok(());
            }
        }
        Some(e) => {
            if !header::check_extent_capacity(path, &mut hs, e.sectors, f) {
                return Ok(());
            }
        }
    }
    let x = tree::Extent {
        path,
        file,
        len,
        h: &hs.h,
    };
    tables::check_tree(&x, f, plan)?;
    plan.header = hs.patched();
    Ok(())
}

/// Checks a descriptor file and every extent it names.
fn check_descriptor_file(
    path: &Path,
    file: &File,
    len: u64,
    f: &mut Findings,
    plans: &mut Vec<FilePlan>,
) -> Result<()> {
    if len as usize > MAX_DESCRIPTOR_BYTES {
        f.fatal(
            ProblemKind::Header,
            format!(
                "{}: no sparse extent header (KDMV magic) and too large ({len} bytes) for a descriptor file",
                path.display()
            ),
        );
        return Ok(());
    }
    let mut bytes = vec![0u8; len as usize];
    read_at_zero_fill(file, path, &mut bytes, 0)?;
    if looks_binary(&bytes) {
        // Most likely a sparse file whose header was destroyed: beyond repair here.
        f.fatal(
            ProblemKind::Header,
            format!(
                "{}: neither a sparse extent header (KDMV magic) nor a text descriptor",
                path.display()
            ),
        );
        return Ok(());
    }
    let text = super::descriptor::decode_text(&bytes);
    let mut plan = FilePlan::new(path);
    descriptor::refuse_unsupported(path, &text)?;
    let Some(d) = descriptor::parse_or_salvage(path, &text, None, f)? else {
        return Ok(());
    };
    let (d, salvaged) = d;
    if salvaged {
        plan.descriptor = Some(DescriptorWrite::File(d.render()));
    }
    let dir = dir_of(path);
    for line in &d.extents {
        let Some(name) = &line.file else {
            continue; // ZERO extents have no file
        };
        // The same rule as Open: a name that leaves the descriptor's directory is never
        // followed (a repair would write into whatever file it names).
        let epath = match extent_path(&dir, name) {
            Ok(p) => p,
            Err(e) => {
                f.fatal(ProblemKind::Descriptor, format!("{}: {e}", path.display()));
                continue;
            }
        };
        let efile = match open_regular(&epath, false) {
            Ok(ef) => ef,
            Err(Error::FileNotFound(_)) => {
                f.fatal(
                    ProblemKind::MissingExtent,
                    format!(
                        "{}: extent file {} does not exist ({} sectors of the disk are lost)",
                        path.display(),
                        epath.display(),
                        line.sectors
                    ),
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        let elen = file_len(&efile, &epath)?;
        let mut eplan = FilePlan::new(&epath);
        match line.kind {
            ExtentKind::Flat | ExtentKind::Vmfs => {
                // An offset or size no disk can have (Open refuses it) is a damaged line, not
                // a short file: extending the file to it would be nonsense (or overflow).
                let Some(end) = line
                    .offset
                    .checked_add(line.sectors)
                    .filter(|&end| end <= MAX_CAPACITY_SECTORS)
                else {
                    f.fatal(
                        ProblemKind::Descriptor,
                        format!(
                            "{}: extent line of {} says offset {} and {} sectors, past the largest disk there can be",
                            path.display(),
                            epath.display(),
                            line.offset,
                            line.sectors
                        ),
                    );
                    continue;
                };
                let need = end * 512;
                if elen < need {
                    f.fixable(
                        ProblemKind::ShortExtent,
                        format!(
                            "{}: flat extent is {elen} bytes, shorter than the {need} bytes its extent line needs",
                            epath.display()
                        ),
                        format!(
                            "extended {} with zeros from {elen} to {need} bytes",
                            epath.display()
                        ),
                    );
                    eplan.extend_to = Some(need);
                }
            }
            ExtentKind::Sparse => {
                let mut efirst = vec![0u8; HEADER_SIZE];
                read_at_zero_fill(&efile, &epath, &mut efirst, 0)?;
                let expected = ExpectedExtent {
                    sectors: line.sectors,
                };
                check_sparse_file(&epath, &efile, elen, &efirst, Some(expected), f, &mut eplan)?;
            }
            ExtentKind::VmfsSparse => {
                return Err(Error::NotSupported(format!(
                    "{}: checking vmfsSparse (COWD) extents is not supported",
                    epath.display()
                )));
            }
            ExtentKind::SeSparse => check_sesparse(&epath, efile, line.sectors, f)?,
            ExtentKind::Zero => {}
        }
        plans.push(eplan);
    }
    // The descriptor file goes last: extents are made sound before it names them again.
    plans.push(plan);
    Ok(())
}

/// Checks a seSparse extent read-only: both headers, the directory, every table entry, every
/// grain inside the file. Damage is reported, never repaired (we do not write seSparse); a
/// variant we do not read (version, journal to replay) fails the check itself.
fn check_sesparse(path: &Path, file: File, sectors: u64, f: &mut Findings) -> Result<()> {
    let found = SeSparseExtent::open(path, file).and_then(|se| {
        se.check_all()?;
        Ok(se.capacity())
    });
    match found {
        Ok(capacity) if capacity < sectors => f.fatal(
            ProblemKind::CapacityMismatch,
            format!(
                "{}: seSparse extent holds {capacity} sectors but the descriptor says {sectors}",
                path.display()
            ),
        ),
        Ok(_) => {}
        Err(Error::InvalidDisk(m)) => f.fatal(ProblemKind::Header, m),
        Err(Error::Corrupt(m)) => f.fatal(ProblemKind::DirectoryEntry, m),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Stale bytes qemu may leave after the NUL of a descriptor file it rewrote with a shorter CID.
const STALE_TAIL_BYTES: usize = 64;

/// True if `bytes` cannot be a descriptor file: control bytes in the text before the first NUL,
/// or more after it than qemu's rewrites leave behind (it pads with NULs and writes the CID
/// without leading zeros, so a shorter CID leaves the old last bytes after the padding).
fn looks_binary(bytes: &[u8]) -> bool {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes[..end]
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n'))
        || bytes[end..].iter().filter(|&&b| b != 0).count() > STALE_TAIL_BYTES
}

/// Convenience for messages: `path` as text.
fn show(path: &Path) -> String {
    path.display().to_string()
}

/// A parsed descriptor and whether it had to be salvaged (then it must be rewritten).
type Parsed = (Descriptor, bool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_rewritten_descriptor_files_are_text_and_broken_sparse_headers_are_not() {
        // qemu rewrote "CID=1a2b3c4d" as "CID=a2b3c4d": the old last newline stays after a NUL.
        let mut qemu = b"# Disk DescriptorFile\nversion=1\nCID=a2b3c4d\n".to_vec();
        qemu.extend_from_slice(b"\0\n");
        qemu.resize(512, 0);
        assert!(!looks_binary(&qemu));
        let mut header = b"\xde\xad\xbe\xef\x01\0\0\0\x03\0\0\0".to_vec();
        header.resize(512, 0);
        header.extend_from_slice(b"# Disk DescriptorFile\nversion=1\n");
        assert!(looks_binary(&header));
        let mut mangled = b"XXXX".to_vec();
        mangled.resize(600, 0);
        mangled.extend(std::iter::repeat_n(b'a', 100));
        assert!(looks_binary(&mangled));
    }
}
