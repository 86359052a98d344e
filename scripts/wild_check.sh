#!/bin/sh
# Runs the library over a folder of VMDKs and compares each with qemu-img:
#
#   scripts/wild_check.sh DIR
#
# DIR is copied to a scratch directory first (it is never changed): every `X.gz` there is
# gunzipped to `X` and every `X.ova` is untarred into `X.ova.d/`. Each disk is then opened
# read-only through libvixDiskLib.so (the Python ctypes package), read whole, compared with
# `qemu-img convert -f vmdk -O raw`, and checked with CheckRepair(repair=FALSE). One line per
# file:
#
#   read like qemu-img      our bytes equal qemu-img's
#   refused CODE NAME       our Open (or Read) failed with that VixError
#   MISMATCH ...            both read it and the bytes differ, or (with EXPECTED.tsv) the
#                           outcome is not the expected one
#
# With DIR/EXPECTED.tsv (the shared corpus has one: case, path after unpacking, expect =
# match|refuse, the accepted Open codes as `A|B`, CheckRepair `0` or `!0`), exactly the files it
# lists are checked against it, each line starts with OK or MISMATCH, and a summary says how
# many behave as it says. Without it, every *.vmdk and *.img file is checked (extent files of
# split disks included: they are refused or read on their own, like qemu-img does).
#
# The library is $VIXDISKLIB_LIB if set, else this checkout's debug build (built if missing).
# Its log lines (the reasons for refusals) go to stderr with WILD_CHECK_VERBOSE=1.
# Exit status: 0 if no MISMATCH, 1 otherwise, 2 on usage errors.
set -eu
dir=${1:?usage: wild_check.sh DIR}
[ -d "$dir" ] || { echo "wild_check.sh: $dir is not a directory" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
command -v qemu-img >/dev/null || { echo "wild_check.sh: qemu-img is needed" >&2; exit 2; }
if [ -z "${VIXDISKLIB_LIB:-}" ]; then
    (cd "$root" && cargo build --lib --quiet)
    VIXDISKLIB_LIB=$root/target/debug/libvixDiskLib.so
fi
export VIXDISKLIB_LIB
scratch=$(mktemp -d "${TMPDIR:-/tmp}/wild-check-XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
cp -R "$dir/." "$scratch/"
chmod -R u+w "$scratch"
find "$scratch" -type f -name '*.gz' -exec gunzip -f {} +
find "$scratch" -type f -name '*.ova' | while read -r ova; do
    mkdir -p "$ova.d"
    tar -xf "$ova" -C "$ova.d"
done
PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH} python3 - "$scratch" <<'EOF'
import os
import subprocess
import sys

import vixdisklib
from vixdisklib import errors

scratch = sys.argv[1]
CHUNK = 8 << 20  # bytes per comparison step
ZEROS = bytes(CHUNK)


def qemu_raw(path, out):
    r = subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", path, out],
                       capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]


def is_hole(fd, start, length):
    """True if [start, start+length) of the raw file holds no data (a hole or past its end)."""
    try:
        nxt = os.lseek(fd, start, os.SEEK_DATA)
    except OSError:
        return True  # ENXIO: no data after start
    return nxt >= start + length


def our_read(conn, path, raw):
    """Opens and reads the disk, comparing chunk by chunk with qemu's raw file when given.
    Returns (code, capacity_sectors, first_difference or None)."""
    try:
        disk = conn.open(path, vixdisklib.VIXDISKLIB_FLAG_OPEN_READ_ONLY)
    except errors.VixError as e:
        return e.code, 0, None
    diff = None
    try:
        cap = disk.capacity
        fd = os.open(raw, os.O_RDONLY) if raw else -1
        try:
            size = os.fstat(fd).st_size if fd >= 0 else 0
            if fd >= 0 and size != cap * 512:
                diff = f"qemu-img reads {size} bytes, we read {cap * 512}"
            pos = 0
            while pos < cap * 512 and diff is None:
                n = min(CHUNK, cap * 512 - pos)
                ours = disk.read(pos // 512, n // 512)
                if fd >= 0:
                    theirs = ZEROS[:n] if is_hole(fd, pos, n) else os.pread(fd, n, pos)
                    if ours != theirs:
                        at = next(i for i in range(n) if ours[i] != theirs[i])
                        diff = f"first difference at byte {pos + at}"
                pos += n
        finally:
            if fd >= 0:
                os.close(fd)
    except errors.VixError as e:
        return e.code, 0, None
    finally:
        disk.close()
    return 0, cap, diff


def check_code(conn, path):
    try:
        conn.check_repair(path, False)
        return 0
    except errors.VixError as e:
        return e.code


def name(code):
    return errors.ERROR_NAMES.get(errors.VIX_ERROR_CODE(code), "VIX_E_<unknown>")


def examine(conn, rel):
    path = os.path.join(scratch, rel)
    raw = os.path.join(scratch, ".qemu.raw")
    qemu_ok, qemu_msg = qemu_raw(path, raw)
    code, cap, diff = our_read(conn, path, raw if qemu_ok else None)
    if os.path.exists(raw):
        os.unlink(raw)
    return {
        "code": code, "cap": cap, "diff": diff, "qemu_ok": qemu_ok, "qemu_msg": qemu_msg[0],
        "check": check_code(conn, path) if os.path.exists(path) else None,
    }


def outcome(r):
    if r["code"] != 0:
        text = f"refused {r['code']} {name(r['code'])}"
        return text + (" (qemu-img reads it)" if r["qemu_ok"] else "")
    if not r["qemu_ok"]:
        return f"read {r['cap']} sectors; qemu-img refuses it ({r['qemu_msg']})"
    if r["diff"]:
        return f"MISMATCH with qemu-img: {r['diff']}"
    return f"read like qemu-img ({r['cap']} sectors)"


# The library's own log lines (why a disk was refused) only with WILD_CHECK_VERBOSE=1.
quiet = None if os.environ.get("WILD_CHECK_VERBOSE") == "1" else (lambda _msg: None)
lib = vixdisklib.Library().init(log=quiet, warn=quiet)
conn = lib.connect(read_only=True)
expected_tsv = os.path.join(scratch, "EXPECTED.tsv")
bad = 0
if os.path.exists(expected_tsv):
    rows = [l.rstrip("\n").split("\t") for l in open(expected_tsv, encoding="utf-8")
            if l.strip() and not l.startswith("#")]
    good = 0
    for case, rel, expect, open_codes, check, *_ in rows:
        r = examine(conn, rel)
        got = outcome(r)
        if expect == "match":
            ok = r["code"] == 0 and r["qemu_ok"] and not r["diff"]
        else:
            ok = r["code"] != 0 and str(errors.VIX_ERROR_CODE(r["code"])) in open_codes.split("|")
        check_ok = r["check"] == 0 if check == "0" else r["check"] not in (0, None)
        ok = ok and check_ok
        good += ok
        bad += not ok
        verdict = "OK      " if ok else "MISMATCH"
        print(f"{verdict} {case:<30} {rel}: {got}; CheckRepair {r['check']}"
              + ("" if ok else f"  [expected {expect}, Open {open_codes}, CheckRepair {check}]"))
    print(f"{good} of {len(rows)} as EXPECTED.tsv says")
else:
    files = sorted(
        os.path.relpath(os.path.join(d, f), scratch)
        for d, _, fs in os.walk(scratch) for f in fs
        if f.lower().endswith((".vmdk", ".img")))
    for rel in files:
        r = examine(conn, rel)
        got = outcome(r)
        bad += got.startswith("MISMATCH")
        print(f"{rel}: {got}; CheckRepair {r['check']}")
conn.close()
lib.exit()
sys.exit(1 if bad else 0)
EOF
