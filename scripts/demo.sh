#!/usr/bin/env bash
# The main demo: builds the library and the C examples, then runs, on disks it creates in a
# temporary directory,
#   1. c_examples/demo: create a disk, write (sync and async), read back, print its info;
#   2. c_examples/nightly_backup: base + nightly redo logs, a past generation, a day re-created
#      with Attach, and a full backup of only the allocated blocks — which qemu-img compare
#      then confirms equals the chain;
#   3. c_examples/backup_recovery: change tracking through the VDDK 9.0 API — snapshot
#      (CreateChild), full backup at T1, incrementals at T2 and T3, a differential at T3,
#      delete snapshot (VixDiskLibExt_Commit), then disaster recovery newest first, each restore
#      checked with qemu-img compare;
#   4. c_examples/shared_base: one read-only base image shared by several redo logs at once,
#      then commit, keep and discard of a Workstation-style redo log.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 >/dev/null
work=$(mktemp -d /var/tmp/vixdisklib-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== demo: create, write, read, info =="
"$build/demo" "$work/demo.vmdk" 64
echo
echo "== nightly_backup: redo logs, Attach, full backup =="
"$build/nightly_backup" "$work"
echo
echo "== qemu-img agrees =="
qemu-img check "$work/base-000003.vmdk"
qemu-img compare -f raw -F vmdk "$work/backup.raw" "$work/base-000003.vmdk"
qemu-img info --backing-chain "$work/day2-recreated.vmdk" | grep -E '^(image|backing file):'
echo
echo "== backup_recovery: full, incremental and differential backups; newest-first restore =="
mkdir -p "$work/backup_recovery"
"$build/backup_recovery" "$work/backup_recovery"
echo
echo "== shared_base: one base image, many redo logs; commit, keep, discard =="
mkdir -p "$work/shared_base"
"$build/shared_base" "$work/shared_base"
