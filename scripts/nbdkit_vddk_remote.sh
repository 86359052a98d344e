#!/usr/bin/env bash
# End-to-end check of issue 11's chain: nbdkit's vddk plugin running over this library against
# a remote NBD export,
#
#     nbdcopy / nbdinfo / qemu-io  ->  nbdkit vddk  ->  libvixDiskLib (ours)  ->  qemu-nbd  ->  disk
#
# Usage: scripts/nbdkit_vddk_remote.sh NBDKIT_BINARY
#   NBDKIT_BINARY  an nbdkit that has the vddk plugin (Debian's does not; build one from
#                  source, see docs/remote.md). This script never builds nbdkit.
# Environment:
#   VIXDISKLIB_PREFIX  an install prefix holding lib64/libvixDiskLib.so.8 (e.g. from
#                      `cmake --install build --prefix P`). Default: build the library with
#                      `cargo build --release --lib` and link a prefix in the temp directory.
#   KEEP=1             keep the temp directory (logs, disks) even when everything passed.
# Needs qemu-img, qemu-nbd, qemu-io, nbdcopy, nbdinfo (Debian: qemu-utils, libnbd-bin).
# Every server listens on a unix socket in a temp directory, except one qemu-nbd on
# 127.0.0.1 for the host + port form. Exits non-zero on the first mismatch.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 NBDKIT_BINARY" >&2
    exit 2
fi
nbdkit=$1
repo=$(cd "$(dirname "$0")/.." && pwd)

for tool in "$nbdkit" qemu-img qemu-nbd qemu-io nbdcopy nbdinfo; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/nbdkit-vddk-remote.XXXXXX")
pids=()
passed=0
cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in ${pids[@]+"${pids[@]}"}; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$passed" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "logs and disks kept in $work" >&2
    fi
}
trap cleanup EXIT

step() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        printf -- '--- tail of %s\n' "$log" >&2
        tail -n 15 "$log" >&2
    done
    exit 1
}

# --- the library -------------------------------------------------------------------------
if [ -n "${VIXDISKLIB_PREFIX:-}" ]; then
    prefix=$VIXDISKLIB_PREFIX
else
    step "building libvixDiskLib (cargo build --release --lib)"
    (cd "$repo" && cargo build --quiet --release --lib)
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    prefix=$work/prefix
    "$repo/scripts/link-versioned.sh" "$prefix/lib64" "$target_dir/release/libvixDiskLib.a" >/dev/null
fi
[ -e "$prefix/lib64/libvixDiskLib.so.8" ] || fail "no $prefix/lib64/libvixDiskLib.so.8"

# The plugin must load our library from the prefix, not some VMware VDDK on the machine.
dump=$("$nbdkit" --dump-plugin vddk libdir="$prefix" 2>&1) ||
    fail "$nbdkit has no working vddk plugin: $dump"
dll=$(printf '%s\n' "$dump" | sed -n 's/^vddk_dll=//p')
expected_dll=$(readlink -f "$prefix/lib64/libvixDiskLib.so.8")
if [ -n "$dll" ] && [ "$dll" != "$expected_dll" ]; then
    fail "the vddk plugin loaded $dll, not $expected_dll"
fi
step "nbdkit $("$nbdkit" --version | awk '{print $2}') vddk plugin loads ${dll:-$expected_dll}"

# --- helpers -----------------------------------------------------------------------------
wait_for_socket() {  # PATH PID WHAT
    local i
    for i in $(seq 1 200); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || fail "$3 exited before listening"
        sleep 0.05
    done
    fail "$3 did not create $1"
}

start_qemu_nbd() {  # NAME ARGS... ; serves on $work/NAME.sock
    local name=$1
    shift
    qemu-nbd --persistent --shared=8 --socket="$work/$name.sock" "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    last_pid=$!
    wait_for_socket "$work/$name.sock" $! "qemu-nbd ($name)"
}

# start_nbdkit NAME [nbdkit options] -- PLUGIN_ARGS... ; serves on $work/NAME.sock.
# The credentials and vm= mean nothing to NBD, but the plugin insists on them for a remote
# server, as a real vCenter program would pass them.
start_nbdkit() {
    local name=$1
    shift
    local opts=()
    while [ "$1" != "--" ]; do
        opts+=("$1")
        shift
    done
    shift
    "$nbdkit" -f -v --exit-with-parent "${opts[@]}" -U "$work/$name.sock" \
        vddk libdir="$prefix" user=backup password=+"$work/password" vm=moref=vm-42 \
        thumbprint=AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD \
        transports=nbd "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    last_pid=$!
    wait_for_socket "$work/$name.sock" $! "nbdkit ($name)"
}

stop() {  # PID: stop one server we started, wait for it, forget it
    local rest=() pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for pid in ${pids[@]+"${pids[@]}"}; do
        [ "$pid" = "$1" ] || rest+=("$pid")
    done
    pids=(${rest[@]+"${rest[@]}"})
}

uri() { printf 'nbd+unix:///?socket=%s' "$work/$1.sock"; }

# covered DATA_MAP NEEDED_MAP: every range NEEDED_MAP (nbdinfo --map) calls data is data in
# DATA_MAP too. QueryAllocatedBlocks may round out to its chunk size, never drop data.
covered() {
    awk 'BEGIN { n = 0 }
        FNR == NR { if ($3 % 2 == 0) { s[n] = $1; e[n] = $1 + $2; n++ } next }
        $3 % 2 == 0 {
            off = $1; end = $1 + $2
            for (i = 0; i < n && off < end; i++)
                if (s[i] <= off && off < e[i]) off = e[i]
            if (off < end) { printf "data at %d not reported\n", off; bad = 1 }
        }
        END { exit bad }' "$1" "$2"
}

printf 'secret\n' >"$work/password"

# --- the source disk ---------------------------------------------------------------------
# 256 MiB with scattered random data (64 KiB .. 3 MiB pieces, some unaligned to grains) and
# holes, as a monolithicSparse VMDK that qemu-nbd serves.
step "making the source disk"
size=$((256 << 20))
truncate -s "$size" "$work/orig.raw"
for i in $(seq 0 23); do
    seek=$(((i * 10663 + 17) % 60000))   # in 4 KiB units, spread over 234 MiB
    count=$((16 << (i % 5)))             # 64 KiB .. 1 MiB
    [ $((i % 7)) = 3 ] && count=768      # 3 MiB
    dd if=/dev/urandom of="$work/orig.raw" bs=4096 seek="$seek" count="$count" \
        conv=notrunc status=none
done
dd if=/dev/urandom of="$work/orig.raw" bs=512 seek=$(((size >> 9) - 3)) count=3 \
    conv=notrunc status=none           # the last sectors
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$work/orig.raw" "$work/disk.vmdk"

# --- 1. unix socket, default export: size, map, reads ------------------------------------
start_qemu_nbd src -f vmdk "$work/disk.vmdk"
src_pid=$last_pid
start_nbdkit vddk -- server="$(uri src)" file=
vddk_pid=$last_pid

step "nbdinfo --size through nbdkit"
got=$(nbdinfo --size "$(uri vddk)")
[ "$got" = "$size" ] || fail "nbdinfo --size says $got, expected $size"
echo "   $got bytes"

step "nbdinfo --map through nbdkit covers qemu-nbd's data (QueryAllocatedBlocks)"
nbdinfo --map "$(uri src)" >"$work/map-qemu.txt"
nbdinfo --map "$(uri vddk)" >"$work/map-vddk.txt"
covered "$work/map-vddk.txt" "$work/map-qemu.txt" || fail "nbdkit's map misses data"
printf '0 %d 3 hole,zero\n' "$size" >"$work/map-empty.txt"   # the check itself must bite
if covered "$work/map-empty.txt" "$work/map-qemu.txt" >/dev/null; then
    fail "the map check accepts a map without data"
fi
echo "   $(grep -c . "$work/map-vddk.txt") extents, $(awk '$3 % 2 == 0 { d += $2 } END { print d + 0 }' "$work/map-vddk.txt") bytes of data"

step "nbdcopy nbdkit -> raw, twice at once; qemu-img compare with the source"
nbdcopy "$(uri vddk)" "$work/read1.raw" &
copy_pid=$!
nbdcopy "$(uri vddk)" "$work/read2.raw"
wait "$copy_pid" || fail "the concurrent nbdcopy failed"
qemu-img compare -U -f vmdk -F raw "$work/disk.vmdk" "$work/read1.raw" ||
    fail "read through nbdkit differs from the source"
qemu-img compare -f raw -F raw "$work/orig.raw" "$work/read2.raw" ||
    fail "the second concurrent read differs from the source"

# --- 2. writes through nbdkit ------------------------------------------------------------
step "nbdcopy --flush raw -> nbdkit (WriteAsync, Flush); qemu-io write + flush"
cp "$work/orig.raw" "$work/expected.raw"
for i in $(seq 0 11); do
    seek=$(((i * 40009 + 5) % 500000))   # in 512-byte units: unaligned to grains
    count=$((1 << (i % 12)))             # 512 B .. 1 MiB
    dd if=/dev/urandom of="$work/expected.raw" bs=512 seek="$seek" count="$count" \
        conv=notrunc status=none
done
dd if=/dev/zero of="$work/expected.raw" bs=65536 seek=100 count=16 conv=notrunc status=none
nbdcopy --flush "$work/expected.raw" "$(uri vddk)" || fail "nbdcopy into nbdkit failed"
qemu-io -f raw -c 'write -P 0x5a 1049088 70144' -c flush -c 'read -P 0x5a 1049088 70144' \
    "$(uri vddk)" >"$work/qemu-io.log" 2>&1 || fail "qemu-io through nbdkit failed"
qemu-io -f raw -c 'write -P 0x5a 1049088 70144' "$work/expected.raw" >/dev/null
qemu-img compare -f raw "$work/expected.raw" "$(uri src)" ||
    fail "qemu-nbd does not see what was written through nbdkit"

step "nbdkit with a missing export fails cleanly and keeps serving"
start_nbdkit missing -- server="$(uri src)" file=no-such-export
missing_pid=$last_pid
if nbdinfo --size "$(uri missing)" >/dev/null 2>&1; then
    fail "a missing export was served"
fi
grep -q VIX_E_FILE_NOT_FOUND "$work/missing.log" || fail "no VIX_E_FILE_NOT_FOUND in the log"
nbdinfo --size "$(uri vddk)" >/dev/null || fail "the first nbdkit stopped serving"

stop "$missing_pid"
stop "$vddk_pid"
stop "$src_pid"
grep -q 'VixDiskLib_Exit' "$work/vddk.log" || fail "nbdkit did not call VixDiskLib_Exit"
if grep -E '^nbdkit: ([a-z]+\[[0-9]+\]: )?error:' "$work/vddk.log"; then
    fail "nbdkit logged errors"
fi

step "qemu-img check + compare on the source after the servers stopped"
qemu-img check -q "$work/disk.vmdk" || fail "qemu-img check found errors"
qemu-img compare -f vmdk -F raw "$work/disk.vmdk" "$work/expected.raw" ||
    fail "the source disk differs from what was written"

# --- 3. host + port, named qcow2 export, read-only nbdkit --------------------------------
step "qemu-nbd on 127.0.0.1 (named qcow2 export) <- nbdkit -r server=127.0.0.1 port=N"
qemu-img convert -f raw -O qcow2 "$work/expected.raw" "$work/disk.qcow2"
for attempt in 1 2 3 4 5 6 7 8; do
    port=$((20000 + (RANDOM % 20000)))
    qemu-nbd --persistent --shared=8 -f qcow2 -x backup-export -b 127.0.0.1 -p "$port" \
        --pid-file="$work/tcp.pid" "$work/disk.qcow2" >"$work/tcp.log" 2>&1 &
    tcp_pid=$!
    for i in $(seq 1 100); do
        [ -s "$work/tcp.pid" ] && break
        kill -0 "$tcp_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$tcp_pid" 2>/dev/null && [ -s "$work/tcp.pid" ]; then
        pids+=("$tcp_pid")
        break
    fi
    wait "$tcp_pid" 2>/dev/null || true
    [ "$attempt" = 8 ] && fail "qemu-nbd could not listen on 127.0.0.1"
done
start_nbdkit ro -r -- server=127.0.0.1 port="$port" file=backup-export
ro_pid=$last_pid
nbdcopy "$(uri ro)" "$work/read-tcp.raw" || fail "nbdcopy over TCP failed"
qemu-img compare -f raw -F raw "$work/expected.raw" "$work/read-tcp.raw" ||
    fail "read of the named export over TCP differs"
if qemu-io -f raw -c 'write -P 0x11 0 512' "$(uri ro)" >"$work/qemu-io-ro.log" 2>&1; then
    fail "a write through a read-only nbdkit succeeded"
fi
stop "$ro_pid"
stop "$tcp_pid"
qemu-img compare -f qcow2 -F raw "$work/disk.qcow2" "$work/expected.raw" ||
    fail "the read-only export changed"

passed=1
step "PASS: nbdkit vddk -> libvixDiskLib -> qemu-nbd (reads, writes, map, size, TCP, read-only)"
