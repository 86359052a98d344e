#!/usr/bin/env bash
# Redo-log chain benchmark: this VixDiskLib vs qemu-img's vmdk driver on the same chains.
#
#   bench/chain.sh
#
# One chain is built with OUR library (bench/chain_read.c "build"): a 4 GiB
# monolithic sparse base with its first 2 GiB written (sequential 1 MiB
# writes of a stamped pattern), then 63 monolithic sparse children, each made
# with CreateChild over the previous leaf and given 4 scattered 64 KiB pieces
# (grain aligned, anywhere in the 4 GiB) so no child is empty.
#
# "Depth" is the number of links (files) in the chain: depth 1 is the base on
# its own, depth 8 is the base and 7 children, depth 64 the base and 63
# children.  The chain is shared: the leaf of depth D is link-DDD.vmdk, so
# both sides read exactly the same files.
#
# For each depth:
#   read   ours: open the leaf read-only (whole chain) and VixDiskLib_Read the
#                WHOLE 4 GiB virtual disk from sector 0 in 1 MiB requests,
#                queue depth 1 (chain_read "read").  The whole disk, not just
#                the 2 GiB written in the base, so that the unallocated half
#                (every link has to be asked and none has the grain) is part
#                of the figure.  Every sector's stamp is checked.
#          qemu: qemu-img bench -f vmdk -c 4096 -s 1M -S 1M -d 1 -t writeback LEAF
#                (the same 4 GiB, same request size, queue depth 1).
#          Figures are the wall-clock time of the whole process (start-up,
#          chain open, I/O, close), as in bench/run.sh; the best of
#          BENCH_RUNS runs is kept.  ratio = qemu time / our time.
#   map    ours: VixDiskLib_QueryAllocatedBlocks over the whole disk, chunk 128
#                sectors, calls of at most VIXDISKLIB_MAX_CHUNK_NUMBER chunks,
#                timed in-process: the first pass and a repeated pass on the
#                same handle (the open is timed separately and is not in them).
#          qemu: wall time of `qemu-img map --output=json LEAF`.
#          Our process wall time (start-up + open + both passes + close) is
#          shown too, since qemu-img map's figure includes all of that.
#          The allocated byte counts of both are printed as a sanity check
#          (qemu: sum of "data": true extents; equal when every allocation is
#          grain-sized, as here).
#
# The page cache cannot be dropped without root, and the files were just
# written, so both sides read from memory (the files are also read once with
# cat before timing): the figures measure the VMDK code path, not the disk.
#
# Builders: the same chain is measured twice, as OUR library built it and as
# qemu-img built it (BENCH_BUILDERS="ours qemu"): the qemu chain's base is
# `qemu-img convert -O vmdk` of our base, and each child is `qemu-img create
# -f vmdk -b PARENT -F vmdk` plus qemu-io `write -s PIECE` of the very same
# stamped 64 KiB pieces (chain_read "pieces"), so every read check holds for
# both.  qemu lays out grain tables and grains in its own order, which is
# what a user's qemu-made chain looks like.
#
# Targets (printed next to the numbers, for each builder): at depth 64 our read is at least 5x
# qemu's and within 1.3x of our depth-1 time; QueryAllocatedBlocks over the
# whole depth-64 chain (first pass) takes at most 10 ms.
#
# Environment (defaults): BENCH_CAPACITY_MIB (4096), BENCH_BASE_MIB (2048),
# BENCH_DEPTHS ("1 8 64"), BENCH_REQ_KIB (1024), BENCH_CHUNK (128),
# BENCH_RUNS (3), BENCH_BUILDERS ("ours qemu"), BENCH_TMPDIR (/var/tmp), CC (gcc), CARGO (cargo),
# CARGO_TARGET_DIR (<repo>/target), VIXDISKLIB_SO (link against this .so
# instead of the cargo release build).

set -euo pipefail

. "$(dirname "$0")/lib.sh"
cap_mib=${BENCH_CAPACITY_MIB:-4096}
base_mib=${BENCH_BASE_MIB:-2048}
depths=${BENCH_DEPTHS:-1 8 64}
req_kib=${BENCH_REQ_KIB:-1024}
chunk=${BENCH_CHUNK:-128}
runs=${BENCH_RUNS:-3}
builders=${BENCH_BUILDERS:-ours qemu}
for b in $builders; do
    case $b in ours|qemu) ;; *) echo "BENCH_BUILDERS: ours and/or qemu, not $b" >&2; exit 2 ;; esac
done

read_mib=$cap_mib
if [ "$base_mib" -gt "$cap_mib" ] || [ $((read_mib * 1024 % req_kib)) -ne 0 ] ||
   [ $((req_kib % 64)) -ne 0 ]; then
    echo "BENCH_BASE_MIB must fit the capacity; BENCH_REQ_KIB must be a multiple of 64" \
         "that divides the capacity" >&2
    exit 2
fi
count=$((read_mib * 1024 / req_kib))
max_depth=1
for d in $depths; do
    case $d in ''|*[!0-9]*) echo "BENCH_DEPTHS: bad depth $d" >&2; exit 2 ;; esac
    [ "$d" -ge 1 ] && [ "$d" -le 255 ] || { echo "BENCH_DEPTHS: 1..255" >&2; exit 2; }
    [ "$d" -gt "$max_depth" ] && max_depth=$d
done
first_depth=${depths%% *}

require_qemu

# Build the library (release) and the benchmark program in a fresh work dir.
bench_setup chain chain_read

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
# best_of VAR command...: run BENCH_RUNS times, keep the smallest wall time in VAR
# (and the output of that run in $work/best)
best_of() {
    local _var=$1 _i _t _best=
    shift
    for ((_i = 0; _i < runs; _i++)); do
        run_timed _t "$@"
        if [ -z "$_best" ] || awk -v a="$_t" -v b="$_best" 'BEGIN { exit !(a < b) }'; then
            _best=$_t
            cp "$work/out" "$work/best"
        fi
    done
    printf -v "$_var" '%s' "$_best"
}

ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }

print_setup
echo "chain:      ${cap_mib} MiB virtual disk, base with ${base_mib} MiB written, children with" \
     "4 x 64 KiB each; depth = links in the chain (1 = base alone)"
echo "read:       the whole ${read_mib} MiB from the leaf in ${req_kib} KiB requests, queue depth 1," \
     "page cache warm; best of $runs"
echo "map:        QueryAllocatedBlocks chunk $chunk sectors vs qemu-img map --output=json"
echo

# ---------------------------------------------------------------------------
# Build the chain (once, with our library; not timed as part of any figure)
# ---------------------------------------------------------------------------
leaf_of() { printf '%s/link-%03d.vmdk' "$1" "$2"; }   # leaf_of DIR DEPTH
chain=$work/chain
mkdir -p "$chain"
run_timed build_time "$work/chain_read" build "$chain" "$cap_mib" "$base_mib" "$max_depth"
sed 's/^/  build  /' "$work/out"
echo "  build  ours: $max_depth links in ${build_time}s; $(du -sk "$chain" | awk '{ printf "%d MiB", $1 / 1024 }') on disk"
qemu_check "build " "the depth-$max_depth leaf (and its chain)" "$(leaf_of "$chain" "$max_depth")"

# The same content, laid out by qemu-img (see "Builders" above).
qchain=$work/qchain
if [[ " $builders " == *" qemu "* ]]; then
    mkdir -p "$qchain"
    t0=$(clock)
    qemu-img convert -O vmdk "$chain/link-001.vmdk" "$qchain/link-001.vmdk"
    for ((l = 2; l <= max_depth; l++)); do
        name=$(basename "$(leaf_of "$qchain" "$l")")
        parent=$(basename "$(leaf_of "$qchain" $((l - 1)))")
        (cd "$qchain" && qemu-img create -q -f vmdk -b "$parent" -F vmdk "$name" "${cap_mib}M")
        cmds=()
        while read -r off file; do
            cmds+=(-c "write -q -s $file $off 64k")
        done < <("$work/chain_read" pieces "$work" "$l" "$cap_mib")
        qemu-io -f vmdk "${cmds[@]}" "$qchain/$name"
    done
    rm -f "$work"/piece-*.bin
    echo "  build  qemu: $max_depth links in $(awk -v a="$t0" -v b="$(clock)" 'BEGIN { printf "%.1f", b - a }')s;" \
         "$(du -sk "$qchain" | awk '{ printf "%d MiB", $1 / 1024 }') on disk"
    qemu_check "build " "the qemu-made depth-$max_depth leaf" "$(leaf_of "$qchain" "$max_depth")"
fi
echo

# ---------------------------------------------------------------------------
# Per builder and depth
# ---------------------------------------------------------------------------
declare -A ours_read qemu_read qab_first qab_again qab_open qab_wall map_wall ours_bytes qemu_bytes
for builder in $builders; do
    dir=$chain
    [ "$builder" = qemu ] && dir=$qchain
    cat "$dir"/*.vmdk >/dev/null
    for d in $depths; do
        k="$builder/$d"
        leaf=$(leaf_of "$dir" "$d")

        best_of t "$work/chain_read" read "$dir" "$d" "$cap_mib" "$base_mib" "$read_mib" "$req_kib"
        ours_read[$k]=$t
        grep '^chain_read:' "$work/best" | sed "s/^chain_read: /  $builder chain, ours   /"

        best_of t qemu-img bench -f vmdk -c "$count" -s "${req_kib}K" -S "${req_kib}K" -d 1 \
            -t writeback "$leaf"
        qemu_read[$k]=$t
        own=$(qemu_own "$work/best")
        echo "  $builder chain, qemu   depth $d: qemu-img bench reports ${own:-?}s for the requests alone, ${t}s wall"

        run_timed t "$work/chain_read" qab "$dir" "$d" "$chunk"
        qab_wall[$k]=$t
        read -r _ _ _ b _ o f a < <(grep '^RESULT qab' "$work/out")
        ours_bytes[$k]=$b; qab_open[$k]=$o; qab_first[$k]=$f; qab_again[$k]=$a
        grep '^chain_read:' "$work/out" | sed "s/^chain_read: /  $builder chain, ours   /"

        best_of t qemu-img map --output=json "$leaf"
        map_wall[$k]=$t
        qemu_bytes[$k]=$(tr -d ' \n' <"$work/best" | sed 's/},{/}\n{/g' |
            awk -F'"length":' '/"data":true/ { split($2, v, /[,}]/); s += v[1] } END { printf "%.0f", s }')
        echo "  $builder chain, qemu   depth $d: qemu-img map $(grep -c '"start"' "$work/best") extents, ${t}s wall"
        echo
    done
done

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
for builder in $builders; do
    echo "chain built by $builder:"
    printf '%-6s %12s %12s %8s %10s %12s %12s %12s %12s %14s\n' depth "ours MiB/s" "qemu MiB/s" ratio \
        "vs depth $first_depth" "QAB 1st ms" "QAB again ms" "ours wall ms" "qemu map ms" "allocated MiB"
    for d in $depths; do
        k="$builder/$d"
        printf '%-6s %12s %12s %7sx %9sx %12.3f %12.3f %12s %12s %14s\n' "$d" \
            "$(mibps "$read_mib" "${ours_read[$k]}")" "$(mibps "$read_mib" "${qemu_read[$k]}")" \
            "$(ratio "${qemu_read[$k]}" "${ours_read[$k]}")" \
            "$(ratio "${ours_read[$k]}" "${ours_read[$builder/$first_depth]}")" \
            "${qab_first[$k]}" "${qab_again[$k]}" "$(ms "${qab_wall[$k]}")" "$(ms "${map_wall[$k]}")" \
            "$(awk -v a="${ours_bytes[$k]}" -v b="${qemu_bytes[$k]}" \
                'BEGIN { printf "%.2f%s", a / 1048576, (a == b ? "" : sprintf(" (qemu %.2f)", b / 1048576)) }')"
    done
    echo
done
echo "(MiB/s and ratios from whole-process wall times; ratio = qemu time / our time;"
echo " QAB ms are in-process, open excluded; 'ours wall ms' is the whole qab process)"
echo
if [[ " $depths " == *" 64 "* && " $depths " == *" 1 "* ]]; then
    for builder in $builders; do
        r=$(ratio "${qemu_read[$builder/64]}" "${ours_read[$builder/64]}")
        s=$(ratio "${ours_read[$builder/64]}" "${ours_read[$builder/1]}")
        q=${qab_first[$builder/64]}
        echo "target ($builder chain): depth-64 read >= 5x qemu:             ${r}x   $(verdict "$r >= 5")"
        echo "target ($builder chain): depth-64 read within 1.3x of depth 1: ${s}x   $(verdict "$s <= 1.3")"
        echo "target ($builder chain): QAB over the depth-64 chain <= 10 ms: $(printf '%.3f' "$q") ms (first pass)," \
             "$(printf '%.3f' "${qab_again[$builder/64]}") ms (repeated)   $(verdict "$q <= 10")"
    done
else
    echo "(targets are defined for depths 1 and 64; BENCH_DEPTHS=\"$depths\")"
fi
