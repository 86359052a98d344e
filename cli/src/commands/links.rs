//! Chain management: `child` (a redo log), `discard` (delete one), `attach`, `rename`.

use std::path::Path;

use vixDiskLib::{Connection, DiskKind};

use super::{close, open, with_disk};
use crate::failure::{CmdResult, Failure, OnFile};
use crate::units::DiskType;

/// Creates a redo log at `child` over the disk at `parent` (which stays unchanged).
pub fn child(parent: &Path, child: &Path, disk_type: DiskType) -> CmdResult {
    let kind = match disk_type {
        DiskType::Vmdk(k @ (DiskKind::MonolithicSparse | DiskKind::SplitSparse)) => k,
        other => {
            return Err(Failure::Usage(format!(
                "a child disk is monolithicSparse or twoGbMaxExtentSparse, not {other}"
            )));
        }
    };
    super::target_dir_exists(child)?;
    // Read-only: a shared lock, refused while someone writes the parent.
    with_disk(open(parent, true, false)?, parent, |disk| {
        disk.create_child(child, kind, &mut |_| {}).on(child)
    })?;
    say!("created {} over {}", child.display(), parent.display());
    Ok(())
}

/// Deletes the redo log at `child`; refuses a disk without a parent (that would be data loss,
/// not a discarded redo log).
pub fn discard(child: &Path) -> CmdResult {
    require_parent(
        child,
        "it is not a redo log (delete a base disk with rm if you mean it)",
    )?;
    Connection::local().unlink(child).on(child)?;
    say!("discarded {}", child.display());
    Ok(())
}

/// Refuses (exit 2, "CHILD has no parent: `why`") a disk whose leaf names no parent: it is not
/// a redo log. Checked before the engine takes its exclusive locks.
fn require_parent(child: &Path, why: &str) -> CmdResult {
    let disk = open(child, true, true)?;
    let has_parent = disk.links().on(child)?[0].parent_cid.is_some();
    close(disk, child)?;
    if has_parent {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "{} has no parent: {why}",
        child.display()
    )))
}

/// Folds the redo log at `child` into its parent and deletes it.
pub fn commit(child: &Path, quiet: bool) -> CmdResult {
    let _ = quiet;
    // Like `discard`: a disk without a parent is a wrong request (exit 2).
    require_parent(child, "only a redo log (child disk) can be committed")?;
    // Not stoppable halfway: a stop request (Ctrl-C, SIGTERM, SIGHUP) waits for the end.
    Connection::local().commit(child, &mut |_| {}).on(child)?;
    say!("committed {} into its parent", child.display());
    if crate::interrupt::requested() {
        eprintln!("vixdisk: asked to stop: finished the commit first (it cannot stop halfway)");
    }
    Ok(())
}

/// Prints the change id of the disk's content now, after turning tracking on or off if asked.
pub fn change_id(disk: &Path, on: bool, off: bool) -> CmdResult {
    if on || off {
        Connection::local().set_change_tracking(disk, on).on(disk)?;
        if off {
            say!("change tracking off for {}", disk.display());
            return Ok(());
        }
    }
    // Read-only: ids are issued by read-only handles too, and a frozen snapshot (whose child
    // a writer holds) can only be opened so.
    let d = open(disk, true, false)?;
    let id = d.change_id().on(disk);
    close(d, disk)?;
    println!("{}", id?);
    Ok(())
}

/// Makes the single link `child` point at the chain of `parent`.
pub fn attach(parent: &Path, child: &Path) -> CmdResult {
    let p = open(parent, true, false)?;
    let c = open(child, false, true)?;
    // The parent handle is consumed: after a successful attach its links belong to the child.
    let result = p.attach(&c).on(child);
    let closed_child = close(c, child);
    result?;
    closed_child?;
    say!("attached {} to {}", child.display(), parent.display());
    Ok(())
}

/// Renames a disk and its extent files.
pub fn rename(source: &Path, target: &Path) -> CmdResult {
    super::target_dir_exists(target)?;
    Connection::local().rename(source, target).on(source)?;
    say!("renamed {} to {}", source.display(), target.display());
    Ok(())
}
