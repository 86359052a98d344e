//! Runs the scenarios in examples/ (nightly redo logs, backup and restore with change ids, a
//! shared base), so they keep building and keep working; each checks its own result and the
//! disks it leaves are checked here with `Connection::check`.

use std::path::Path;

#[path = "../examples/backup_restore.rs"]
#[allow(dead_code)]
mod backup_restore;
#[path = "../examples/nightly_redo_logs.rs"]
#[allow(dead_code)]
mod nightly_redo_logs;
#[path = "../examples/shared_base.rs"]
#[allow(dead_code)]
mod shared_base;

/// Every .vmdk the scenario left passes the metadata check.
fn all_clean(dir: &Path) {
    let conn = vixDiskLib::Connection::local();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "vmdk") {
            conn.check(&path, false)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn nightly_redo_logs_example() {
    let dir = tempfile::tempdir().unwrap();
    nightly_redo_logs::run(dir.path()).unwrap();
    all_clean(dir.path());
}

#[test]
fn backup_restore_example() {
    let dir = tempfile::tempdir().unwrap();
    backup_restore::run(dir.path()).unwrap();
    all_clean(dir.path());
    // An outside oracle: qemu-img sees the same content in the disk and its restored copy.
    let out = std::process::Command::new("qemu-img")
        .arg("compare")
        .arg(dir.path().join("vm.vmdk"))
        .arg(dir.path().join("restored.vmdk"))
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn shared_base_example() {
    let dir = tempfile::tempdir().unwrap();
    shared_base::run(dir.path()).unwrap();
    all_clean(dir.path());
}
