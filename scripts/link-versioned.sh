#!/usr/bin/env bash
# Relink the Rust staticlib into a symbol-versioned libvixDiskLib.so.
#
# Usage:
#   scripts/link-versioned.sh OUTDIR STATICLIB
#       Link STATICLIB (e.g. target/release/libvixDiskLib.a) into
#       OUTDIR/libvixDiskLib.so.8.0.3 with SONAME libvixDiskLib.so.8, binding
#       every export to its node from vixDiskLib.map, then create the symlinks
#         libvixDiskLib.so.8 -> libvixDiskLib.so.8.0.3
#         libvixDiskLib.so.9 -> libvixDiskLib.so.8.0.3   (nbdkit >= 1.44 tries .so.9 first)
#         libvixDiskLib.so   -> libvixDiskLib.so.8
#       Finally runs the --check below (missing symbols are warnings here).
#
#   scripts/link-versioned.sh --check [--strict] SHARED_OBJECT
#       Verify that every VixDiskLib_* symbol listed in vixDiskLib.map is
#       exported by SHARED_OBJECT and bound to the node the map gives it, and
#       that nothing else is exported.  With --strict a missing symbol is an
#       error too (wrong node or unexpected exports always are).
#
# Why not just let rustc link the cdylib: rustc's own version script for a
# cdylib is an anonymous one, so exports end up unbound to our nodes and
# binaries linked against VMware's library (which record e.g.
# VixDiskLib_Open@VIXDISKLIB_1.0) would not find their versions.
#
# Environment:
#   CC                      C compiler driver used for linking (default: gcc)
#   VIXDISKLIB_MAP          version script (default: <repo>/vixDiskLib.map)
#   VIXDISKLIB_FULL_VERSION full file version (default: 8.0.3)
#   VIXDISKLIB_SONAME_MAJOR SONAME major (default: first component of the above)
#   VIXDISKLIB_EXTRA_LIBS   extra libraries for the link (default: -lpthread -ldl -lm -lrt -lgcc_s -lc)
#   VIXDISKLIB_FORCE_LINK=1 relink even if the output is newer than its inputs

set -euo pipefail
# No `producer | grep -q` (or a reader that exits early) anywhere below: with pipefail the
# producer's SIGPIPE fails the pipeline whenever the reader stops before the producer is done,
# which made --check fail at random. Readers get their input from a here-string instead.

script_dir=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
map=${VIXDISKLIB_MAP:-$repo_root/vixDiskLib.map}
full_version=${VIXDISKLIB_FULL_VERSION:-8.0.3}
major=${VIXDISKLIB_SONAME_MAJOR:-${full_version%%.*}}
cc=${CC:-gcc}
extra_libs=${VIXDISKLIB_EXTRA_LIBS:--lpthread -ldl -lm -lrt -lgcc_s -lc}

die() { echo "link-versioned.sh: error: $*" >&2; exit 1; }
warn() { echo "link-versioned.sh: warning: $*" >&2; }

# Print "SYMBOL NODE" for every function listed in the version script.
map_symbols() {
    awk '
        { sub(/\/\*.*\*\//, "") }                      # one-line comments
        /^[ \t]*[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); next }
        /^[ \t]*VixDiskLib(Ext)?_[A-Za-z0-9_]+[ \t]*;/ {
            s = $1; sub(/;.*/, "", s); print s, node
        }' "$map"
}

# Print "SYMBOL VERSION" for every defined dynamic symbol of a shared object
# (version node names themselves, which objdump lists as ABS entries, are skipped).
exported_symbols() {
    LC_ALL=C objdump -T "$1" | awk '
        # fields: value flags... section size [version] name
        $0 ~ /^[0-9a-f]+ / {
            if ($0 ~ /\*UND\*/) next
            name = $NF; ver = $(NF-1)
            if (name ~ /^\(/ || name ~ /^VIXDISKLIB/) next
            if (ver ~ /^\(/) { gsub(/[()]/, "", ver) }    # hidden versions
            if (ver ~ /^[0-9a-f]+$/ && length(ver) >= 8) ver = "unversioned"  # that was the size
            print name, ver
        }'
}

check() {
    local strict=0
    if [ "${1:-}" = "--strict" ]; then strict=1; shift; fi
    local so=${1:?shared object required}
    [ -f "$so" ] || die "no such file: $so"
    [ -f "$map" ] || die "no version script: $map"

    local expected exported status=0 missing=0 missing_names=""
    expected=$(map_symbols)
    exported=$(exported_symbols "$so")

    # Version definitions must all be present.
    local node defs
    defs=$(LC_ALL=C readelf -V "$so" | sed -n 's/.*Name: \([A-Za-z0-9_.]*\).*/\1/p')
    for node in $(awk '/^[ \t]*[A-Za-z0-9_.]+[ \t]*\{/ { n = $1; sub(/\{.*/, "", n); print n }' "$map"); do
        if ! grep -qx -- "$node" <<<"$defs"; then
            echo "MISSING NODE  $node" >&2; status=1
        fi
    done

    # Lookups in bash maps, not one awk per symbol: the check runs in CI many times.
    local sym want got
    local -A exported_ver=() expected_node=()
    while read -r sym got; do
        if [ -n "$sym" ] && [ -z "${exported_ver[$sym]+set}" ]; then exported_ver[$sym]=$got; fi
    done <<<"$exported"
    while read -r sym want; do
        if [ -n "$sym" ]; then expected_node[$sym]=$want; fi
    done <<<"$expected"
    while read -r sym want; do
        [ -n "$sym" ] || continue
        got=${exported_ver[$sym]:-}
        if [ -z "$got" ]; then
            [ "$strict" -eq 1 ] && echo "MISSING       $sym (should be $want)" >&2
            missing=$((missing + 1))
            missing_names="$missing_names ${sym#VixDiskLib_}"
        elif [ "$got" != "$want" ]; then
            echo "WRONG NODE    $sym: $got (should be $want)" >&2; status=1
        fi
    done <<EOF
$expected
EOF

    # Nothing but the API may be exported.
    local extra
    extra=$(while read -r sym got; do
        if [ -n "$sym" ] && [ -z "${expected_node[$sym]+set}" ]; then echo "$sym $got"; fi
    done <<<"$exported")
    if [ -n "$extra" ]; then
        printf '%s\n' "$extra" | sed 's/^/UNEXPECTED    /' >&2
        status=1
    fi

    local soname
    soname=$(LC_ALL=C readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
    if [ "$soname" != "libvixDiskLib.so.$major" ]; then
        echo "BAD SONAME    '$soname' (should be libvixDiskLib.so.$major)" >&2; status=1
    fi

    local total
    total=$(printf '%s\n' "$expected" | awk 'NF' | wc -l)
    if [ "$missing" -gt 0 ]; then
        if [ "$strict" -eq 1 ]; then
            echo "$missing of $total API symbols missing" >&2; status=1
        else
            warn "$missing of $total API symbols are not (yet) exported (VixDiskLib_*):$missing_names"
        fi
    fi
    if [ "$status" -eq 0 ]; then
        echo "$so: $((total - missing))/$total API symbols bound to their VIXDISKLIB nodes, SONAME $soname"
    fi
    return "$status"
}

link() {
    local outdir=${1:?usage: link-versioned.sh OUTDIR STATICLIB}
    local staticlib=${2:?usage: link-versioned.sh OUTDIR STATICLIB}
    [ -f "$staticlib" ] || die "no such static library: $staticlib"
    [ -f "$map" ] || die "no version script: $map"
    mkdir -p "$outdir"

    local base=libvixDiskLib.so
    local file=$base.$full_version
    local soname=$base.$major
    local tmp="$outdir/.$file.tmp.$$"
    trap 'rm -f "$tmp"' EXIT

    # Report Rust-side exports the version script would silently hide.
    local hidden
    hidden=$(LC_ALL=C nm -g --defined-only "$staticlib" 2>/dev/null |
        awk '$2 ~ /^[TW]$/ && $3 ~ /^VixDiskLib(Ext)?_/ { print $3 }' | sort -u |
        while read -r s; do
            map_symbols | awk -v s="$s" '$1 == s { f = 1 } END { exit !f }' || echo "$s"
        done)
    if [ -n "$hidden" ]; then
        warn "not in $(basename "$map") and therefore not exported: $(echo $hidden)"
    fi

    # Up to date (newer than its inputs): keep it, so dependants do not relink.
    if [ -f "$outdir/$file" ] && [ "${VIXDISKLIB_FORCE_LINK:-0}" != 1 ] &&
       [ "$outdir/$file" -nt "$staticlib" ] && [ "$outdir/$file" -nt "$map" ] &&
       [ "$outdir/$file" -nt "$0" ]; then
        :
    else
        # shellcheck disable=SC2086  # extra_libs is a word list on purpose
        "$cc" -shared -o "$tmp" \
            -Wl,--whole-archive "$staticlib" -Wl,--no-whole-archive \
            -Wl,--version-script="$map" \
            -Wl,-soname,"$soname" \
            -Wl,--gc-sections -Wl,--no-undefined -Wl,-z,noexecstack -Wl,-z,relro,-z,now \
            $extra_libs
        mv -f "$tmp" "$outdir/$file"
    fi
    trap - EXIT

    ln -sfn "$file" "$outdir/$base.$major"
    if [ "$major" != 9 ]; then
        ln -sfn "$file" "$outdir/$base.9"
    fi
    ln -sfn "$base.$major" "$outdir/$base"

    check "$outdir/$file"
}

case "${1:-}" in
    --check) shift; check "$@" ;;
    -h|--help|"") sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; [ -n "${1:-}" ] ;;
    *) link "$@" ;;
esac
