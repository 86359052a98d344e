//! Which disks depend on a link: the disks in some directories whose parent hint resolves to
//! it. A commit refuses to change a parent that others still read, and re-points the redo
//! logs that sit on the link it removes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::resolve::find_parent;
use crate::vmdk::peek::{LinkIdentity, peek_link};

/// A disk whose parent is the link asked about.
#[derive(Debug, Clone)]
pub struct Dependent {
    /// The dependent disk's descriptor (or single file).
    pub path: PathBuf,
    /// What it says about itself.
    pub identity: LinkIdentity,
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Every disk in `dirs` (each searched once, not recursively) whose parent hint resolves to
/// `link`, except those listed in `skip`.
pub fn dependents_of(link: &Path, dirs: &[PathBuf], skip: &[PathBuf]) -> Vec<Dependent> {
    let target = canonical(link);
    let skip: HashSet<PathBuf> = skip.iter().map(|p| canonical(p)).collect();
    let mut seen_dirs = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        if !seen_dirs.insert(canonical(dir)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let c = canonical(&path);
            if c == target || skip.contains(&c) {
                continue;
            }
            let Some(identity) = peek_link(&path) else {
                continue;
            };
            let Some(hint) = &identity.parent_hint else {
                continue;
            };
            let resolves_here =
                find_parent(&path, hint).is_ok_and(|parent| canonical(&parent) == target);
            if resolves_here {
                out.push(Dependent { path, identity });
            }
        }
    }
    out
}
