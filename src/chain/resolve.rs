//! Finding and validating the parents of a link: hint resolution, CID and capacity checks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::descriptor::{Descriptor, NO_PARENT_CID};
use crate::vmdk::link::{Link, commit_journal, dir_of};

/// Deepest chain we open (VMware's limit on redo logs).
pub(crate) const MAX_CHAIN_LINKS: usize = 255;

/// Candidate paths for a parent hint, in the order we try them: as written (relative to the
/// child's directory unless absolute), then with Windows separators turned into `/`.
pub fn parent_candidates(child: &Path, hint: &str) -> Vec<PathBuf> {
    let dir = dir_of(child);
    let mut out = Vec::new();
    for h in [hint.to_string(), hint.replace('\\', "/")] {
        let p = Path::new(&h);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        if !out.contains(&full) {
            out.push(full);
        }
    }
    // A Windows absolute hint ("C:/vms/base.vmdk") cannot exist here: fall back to the file name
    // next to the child, which is where copied chains usually put it.
    if let Some(name) = Path::new(&hint.replace('\\', "/")).file_name() {
        let local = dir.join(name);
        if !out.contains(&local) {
            out.push(local);
        }
    }
    out
}

/// The file a parent hint names, as the chain opener finds it (the first candidate that exists).
pub fn find_parent(child: &Path, hint: &str) -> Result<PathBuf> {
    let candidates = parent_candidates(child, hint);
    match candidates.iter().find(|p| p.exists()) {
        Some(p) => Ok(p.clone()),
        None => Err(Error::OpenParent {
            child: child.to_path_buf(),
            parent: candidates[0].clone(),
            reason: "file not found".into(),
        }),
    }
}

/// True if `child` (descriptor `d`) may sit on a parent whose CID is `parent_cid`: the CIDs
/// match, the child is a legacy log without CIDs, or the child's unfinished commit gave the
/// parent exactly that CID (the parent then holds every grain of the child, so reading
/// through the child gives the same content).
fn cid_accepted(child: &Link, d: &Descriptor, parent_cid: u32) -> bool {
    if child.is_legacy_redo() || d.parent_cid == parent_cid {
        return true;
    }
    if commit_journal(d) == Some(parent_cid) {
        log::info(format!(
            "{}: its commit into the parent is done but not cleaned up; reading through it \
             (call VixDiskLibExt_Commit on it again to finish)",
            child.path().display()
        ));
        return true;
    }
    false
}

/// Opens every parent of `leaf` read-only, checking CIDs and capacity; returns leaf-first.
pub fn open_parents(leaf: Link) -> Result<Vec<Link>> {
    let parents = parents_of(&leaf)?;
    let mut links = vec![leaf];
    links.extend(parents);
    Ok(links)
}

/// Opens every parent of `leaf` read-only, checking CIDs and capacity; returns them nearest
/// first, without the leaf (none for a base).
pub fn parents_of(leaf: &Link) -> Result<Vec<Link>> {
    let mut seen = HashSet::new();
    seen.insert(canonical(leaf.path()));
    let mut links: Vec<Link> = Vec::new();
    loop {
        let child = links.last().unwrap_or(leaf);
        let d = child.descriptor();
        let Some(hint) = d.parent_hint.clone() else {
            break;
        };
        if d.parent_cid == NO_PARENT_CID {
            break;
        }
        if links.len() + 1 >= MAX_CHAIN_LINKS {
            return Err(Error::TooManyLinks(format!(
                "{} has more than {MAX_CHAIN_LINKS} links",
                leaf.path().display()
            )));
        }
        let parent_path = find_parent(child.path(), &hint)?;
        if !seen.insert(canonical(&parent_path)) {
            return Err(Error::TooManyLinks(format!(
                "{} refers back to {} (loop)",
                child.path().display(),
                parent_path.display()
            )));
        }
        let parent = Link::open(&parent_path, false).map_err(|e| Error::OpenParent {
            child: child.path().to_path_buf(),
            parent: parent_path.clone(),
            reason: e.to_string(),
        })?;
        let pd = parent.descriptor();
        if !cid_accepted(child, &d, pd.cid) {
            return Err(Error::CidMismatch {
                child: child.path().to_path_buf(),
                parent: parent_path,
                expected: d.parent_cid,
                found: pd.cid,
            });
        }
        if parent.capacity() != child.capacity() {
            return Err(Error::CapacityMismatch(format!(
                "{} has {} sectors but its parent {} has {}",
                child.path().display(),
                child.capacity(),
                parent_path.display(),
                parent.capacity()
            )));
        }
        links.push(parent);
    }
    Ok(links)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_hint_resolves_against_child_directory() {
        let c = parent_candidates(Path::new("/vm/snaps/child.vmdk"), "../base/b.vmdk");
        assert_eq!(c[0], PathBuf::from("/vm/snaps/../base/b.vmdk"));
    }

    #[test]
    fn windows_hint_gets_slash_form_and_basename_fallback() {
        let c = parent_candidates(Path::new("/vm/c.vmdk"), "..\\base\\b.vmdk");
        assert!(c.contains(&PathBuf::from("/vm/../base/b.vmdk")));
        assert!(c.contains(&PathBuf::from("/vm/b.vmdk")));
    }

    #[test]
    fn absolute_hint_is_used_as_is() {
        let c = parent_candidates(Path::new("/vm/c.vmdk"), "/data/base.vmdk");
        assert_eq!(c[0], PathBuf::from("/data/base.vmdk"));
    }
}
