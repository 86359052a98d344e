//! The oracles of the kill sweep: qemu-img check, qemu-io pattern reads, our CheckRepair, and
//! the files an interrupted call may leave behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::vmdk::check::{Outcome, check_disk};
use vixDiskLib::vmdk::link::Link;

/// qemu does not open vmfsThin descriptors: those images get our oracles only.
pub fn qemu_knows(path: &Path) -> bool {
    let head = std::fs::read(path).unwrap_or_default();
    let head = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    !head.contains("createType=\"vmfsThin\"")
}

/// Runs `qemu-img check` (falling back to `qemu-img info` for formats without checks).
pub fn qemu_check(path: &Path) -> Result<(), String> {
    if !qemu_knows(path) {
        return Ok(());
    }
    let out = Command::new("qemu-img")
        .args(["check", "-f", "vmdk"])
        .arg(path)
        .output()
        .map_err(|e| format!("qemu-img: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(63) => {
            let info = Command::new("qemu-img")
                .args(["info", "-f", "vmdk"])
                .arg(path)
                .output()
                .map_err(|e| format!("qemu-img: {e}"))?;
            if info.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "qemu-img info: {}",
                    String::from_utf8_lossy(&info.stderr).trim()
                ))
            }
        }
        _ => Err(format!(
            "qemu-img check: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// qemu-io reads each `(sector, sectors, byte)` run and compares it with the byte.
pub fn qemu_reads(path: &Path, runs: &[(u64, u64, u8)]) -> Result<(), String> {
    if runs.is_empty() || !qemu_knows(path) {
        return Ok(());
    }
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-r", "-f", "vmdk"]);
    for &(s, n, b) in runs {
        cmd.arg("-c")
            .arg(format!("read -q -P {b} {} {}", s * 512, n * 512));
    }
    let out = cmd
        .arg(path)
        .output()
        .map_err(|e| format!("qemu-io: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || text.contains("fail") || text.contains("rror") {
        return Err(format!("qemu-io: {}", text.trim()));
    }
    Ok(())
}

/// Our CheckRepair without repair must find nothing to repair (notes such as grains appended
/// after the last Flush are allowed); streams are also read in full.
pub fn our_check(path: &Path, stream: bool) -> Result<(), String> {
    if stream {
        let d = Disk::open(
            path,
            OpenOptions {
                read_only: true,
                single_link: true,
            },
        )
        .map_err(|e| format!("open: {e}"))?;
        let mut buf = vec![0u8; (d.capacity() * 512) as usize];
        d.read(0, &mut buf).map_err(|e| format!("read: {e}"))?;
    }
    let r = check_disk(path, false).map_err(|e| format!("CheckRepair: {e}"))?;
    match r.outcome() {
        Outcome::Clean => Ok(()),
        other => Err(format!("CheckRepair: {other:?}: {:?}", r.problems)),
    }
}

/// Files in `dir` that only an interrupted operation leaves.
pub fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp-new") || n.contains(".compact-tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// Every file in `dir` that no link in `links` owns.
pub fn stray_files(dir: &Path, links: &[&Path]) -> Vec<String> {
    let mut owned = Vec::new();
    for l in links {
        if let Ok(link) = Link::open(l, false) {
            owned.extend(link.files());
        }
    }
    let owned: Vec<PathBuf> = owned
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    let c = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                    !owned.contains(&c)
                })
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the image at `path` with every oracle; `expected` is its content (or a prefix).
pub fn verify_image(path: &Path, stream: bool, expected: Option<&[u8]>) -> Result<(), String> {
    our_check(path, stream)?;
    qemu_check(path)?;
    if let Some(model) = expected {
        let d = Disk::open(
            path,
            OpenOptions {
                read_only: true,
                single_link: false,
            },
        )
        .map_err(|e| format!("open: {e}"))?;
        let n = (model.len() as u64 / 512).min(d.capacity());
        let mut buf = vec![0u8; (n * 512) as usize];
        d.read(0, &mut buf).map_err(|e| format!("read: {e}"))?;
        if buf[..] != model[..(n * 512) as usize] {
            return Err("content differs from the source".into());
        }
    }
    Ok(())
}
