//! Whole-disk file operations on closed links: Unlink (delete every file of a link) and
//! Rename (move every file and rewrite the descriptor's extent names).

use std::path::{Path, PathBuf};

use super::tracking::tracking_name;
use crate::error::{Error, Result};
use crate::vmdk::atomic::{NewDisk, sync_dir};
use crate::vmdk::create::{create_new_file, prepare_new, require_dir_of};
use crate::vmdk::descriptor::Descriptor;
use crate::vmdk::fileio::{self, sync_data, write_all_at};
use crate::vmdk::link::{Link, dir_of};
use crate::vmdk::track::TRACKING_KEY;

/// Deletes every file of the link at `path` (descriptor and extents). The link must not be
/// open elsewhere (we take its exclusive lock first). Children of it are orphaned.
pub fn unlink(path: &Path) -> Result<()> {
    let files = {
        let link = Link::open(path, true)?;
        link.files()
    };
    for f in &files {
        match fileio::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(f, e)),
        }
    }
    Ok(())
}

/// Moves a monolithic disk's tracking file along with it (now at `dst`); returns its new name.
fn move_tracking(track: Option<&Path>, dst: &Path) -> Result<Option<String>> {
    let Some(track) = track.filter(|t| t.exists()) else {
        return Ok(None);
    };
    let name = tracking_name(dst);
    let to = dir_of(dst).join(&name);
    // rename() replaces: never over a file (or symlink) that is already there.
    if std::fs::symlink_metadata(&to).is_ok() {
        return Err(Error::FileExists(to));
    }
    fileio::rename(track, &to).map_err(|e| Error::io(track, e))?;
    Ok(Some(name))
}

/// New name for an extent file when its disk is renamed from stem `old` to stem `new`.
fn renamed_extent(name: &str, old: &str, new: &str) -> String {
    match name.strip_prefix(old) {
        Some(rest) => format!("{new}{rest}"),
        None => name.to_string(),
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Renames the disk at `src` to `dst` (same or another directory): every extent file moves
/// with it and the descriptor names the new files. Children keep their old
/// `parentFileNameHint` and will no longer find this disk until re-attached.
///
/// Power-cut safe: at every moment one of the two names opens as the whole disk. A monolithic
/// disk is one rename (made durable before its embedded descriptor is changed). A descriptor
/// disk first gets its extents' new names as hard links (the old names keep working), then
/// its new descriptor, published complete; only then do the old names go.
pub fn rename(src: &Path, dst: &Path) -> Result<()> {
    // symlink_metadata, not exists(): a dangling symlink at a target name counts as a file.
    if std::fs::symlink_metadata(dst).is_ok() {
        return Err(Error::FileExists(dst.to_path_buf()));
    }
    // Else a missing target directory fails the first move as "file not found: SRC".
    require_dir_of(dst)?;
    let link = Link::open(src, true)?;
    let mut d: Descriptor = link.descriptor();
    if link.is_monolithic() {
        let track = link.tracking_file();
        if track.as_deref().is_some_and(Path::exists) {
            // Checked before anything moves, so a refusal leaves the disk as it was.
            let to = dir_of(dst).join(tracking_name(dst));
            if std::fs::symlink_metadata(&to).is_ok() {
                return Err(Error::FileExists(to));
            }
        }
        drop(link);
        fileio::rename(src, dst).map_err(|e| Error::io(src, e))?;
        sync_dir(dst)?;
        if dir_of(src) != dir_of(dst) {
            sync_dir(src)?;
        }
        let moved = Link::open(dst, true)?;
        let name = dst.file_name().map(|n| n.to_string_lossy().into_owned());
        let track_name = move_tracking(track.as_deref(), dst)?;
        return moved.update_descriptor(|d| {
            if let Some(e) = d.extents.first_mut() {
                e.file = name;
            }
            if let Some(t) = &track_name {
                d.ddb_set(TRACKING_KEY, t);
            }
        });
    }
    let (old_stem, new_stem) = (stem(src), stem(dst));
    let (src_dir, dst_dir) = (dir_of(src), dir_of(dst));
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
    for e in &mut d.extents {
        if let Some(name) = &e.file {
            let new_name = renamed_extent(name, &old_stem, &new_stem);
            let target = dst_dir.join(&new_name);
            if std::fs::symlink_metadata(&target).is_ok() {
                return Err(Error::FileExists(target));
            }
            moves.push((src_dir.join(name), target));
            e.file = Some(new_name);
        }
    }
    let track = link.tracking_file();
    if let Some(t) = &track {
        let name = tracking_name(dst);
        let target = dst_dir.join(&name);
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(Error::FileExists(target));
        }
        moves.push((t.clone(), target));
        d.ddb_set(TRACKING_KEY, &name);
    }
    let mut linked: Vec<&PathBuf> = Vec::new();
    for (from, to) in &moves {
        if let Err(e) = fileio::hard_link(from, to) {
            for p in linked {
                let _ = fileio::remove_file(p);
            }
            return Err(Error::io(to, e));
        }
        linked.push(to);
    }
    let tmp = prepare_new(dst)?;
    let written = (|| {
        let out = create_new_file(&tmp)?;
        write_all_at(&out, &tmp, &d.to_bytes(), 0)?;
        sync_data(&out, &tmp)
    })();
    let published = written.and_then(|()| NewDisk::single(tmp.clone(), dst).publish());
    if let Err(e) = published {
        let _ = fileio::remove_file(&tmp);
        for p in linked {
            let _ = fileio::remove_file(p);
        }
        return Err(e);
    }
    drop(link);
    // The old names go, the descriptor first (a leftover extent name is only a stray link).
    fileio::remove_file(src).map_err(|e| Error::io(src, e))?;
    for (from, _) in &moves {
        fileio::remove_file(from).map_err(|e| Error::io(from, e))?;
    }
    sync_dir(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_names_follow_the_new_stem() {
        assert_eq!(
            renamed_extent("disk-s001.vmdk", "disk", "new"),
            "new-s001.vmdk"
        );
        assert_eq!(renamed_extent("disk-flat.vmdk", "disk", "b"), "b-flat.vmdk");
        assert_eq!(renamed_extent("other.raw", "disk", "b"), "other.raw");
    }
}
