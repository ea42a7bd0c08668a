#!/usr/bin/env bash
# tests/bench.sh  -- dockling's start-up, networking and memory benchmarks.
#
# Run as root after a release build and `rootfs/build.sh busybox python`:
#     sudo bash tests/bench.sh
# Section 5 needs Debian's runc (tests/run.sh installs it).
# Environment knobs: REPS (default 30), WARMUP (3), HTTP_REPS (10), N_MANY (50), N_FW (200),
# MANY_ROUNDS (3); TMPDIR (/tmp), where the throw-away root goes; BASELINE, the path of
# another build of dockling (an older commit's target/release/dockling) to time
# `run --rm --network none` against, paired (section 1b). For steady figures put TMPDIR
# on a journaled ext4 (a file system without a journal makes inode creation slow after
# deletions), e.g. a loop mount: truncate -s 2G /tmp/b.img; mkfs.ext4 -q /tmp/b.img;
# mkdir -p /mnt/b; mount -o loop /tmp/b.img /mnt/b; TMPDIR=/mnt/b bash tests/bench.sh
#
# Everything runs inside a simulated host: a private mount namespace and a fresh
# network namespace (`unshare --mount --propagation private --net --fork`) with its
# own /run/netns, sysfs, loopback and a veth pair (both ends inside) holding 198.51.100.1/24, and a
# throw-away `--root`. No packet leaves that namespace; the bridge, veths and
# iptables rules dockling makes live and die there. At the end every container is
# removed, the network pruned, the root deleted, and the real host's `ip netns
# list` and `ip link` are checked to be as they were.
#
# Timing: the short commands (sections 1, 2, 4b) are timed by tests/bench_time.py,
# which spawns each command directly (posix_spawn + waitpid, monotonic clock) and
# interleaves the commands it compares; its own cost is shown by timing `/bin/true`
# the same way (that figure includes exec'ing true). The long ones (3, 4a) use
# `date +%s%N`. Medians and p90 (nearest rank) are over the timed repetitions, after
# WARMUP untimed ones; "net" subtracts the /bin/true figure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

[ "$(id -u)" -eq 0 ] || { echo "tests/bench.sh: run as root (sudo bash tests/bench.sh)" >&2; exit 1; }
D=$REPO/target/release/dockling
[ -x "$D" ] || { echo "tests/bench.sh: $D missing (bash scripts/build.sh)" >&2; exit 1; }
if [ -n "${BASELINE:-}" ]; then
    BASELINE=$(realpath "$BASELINE")
    [ -x "$BASELINE" ] || { echo "tests/bench.sh: BASELINE $BASELINE is not an executable" >&2; exit 1; }
fi
export BASELINE=${BASELINE:-}
for img in busybox python; do
    [ -d "rootfs/out/$img" ] || { echo "tests/bench.sh: rootfs/out/$img missing (bash rootfs/build.sh busybox python)" >&2; exit 1; }
done
for tool in unshare ip iptables curl chroot python3; do
    command -v "$tool" >/dev/null || { echo "tests/bench.sh: $tool not found" >&2; exit 1; }
done

export REPS=${REPS:-30} WARMUP=${WARMUP:-3} HTTP_REPS=${HTTP_REPS:-10} N_MANY=${N_MANY:-50} MANY_ROUNDS=${MANY_ROUNDS:-3} N_FW=${N_FW:-200}

host_state() { ip netns list; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
BEFORE=$(host_state)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dockling-bench.XXXXXX")
cleanup_outer() { rm -rf "$WORK"; }
trap cleanup_outer EXIT

# The binaries under test run from fresh copies (dockling-monitor beside each, where
# dockling looks for it): how a file came into the page cache changes what exec'ing it
# costs, and a binary just written by the linker runs every command ~0.8 ms slower here
# than a copy of it. Copies put this build and BASELINE on the same footing.
fresh_copy() {   # fresh_copy BINARY DIR -> prints the copy's path
    mkdir -p "$2"
    cp "$1" "$2/dockling"
    if [ -x "$(dirname "$1")/dockling-monitor" ]; then cp "$(dirname "$1")/dockling-monitor" "$2/"; fi
    echo "$2/dockling"
}
D=$(fresh_copy "$D" "$WORK/bin")
if [ -n "$BASELINE" ]; then BASELINE=$(fresh_copy "$BASELINE" "$WORK/bin-baseline"); fi

# ---------------------------------------------------------------- inside the sim host
INNER=$(cat <<'EOF'
set -euo pipefail
D=$1 R=$2 W=$3 REPO=$4
dk() { "$D" --root "$R" "$@"; }
# bench_time REPS OUT CMD... [';;' OUT CMD...]: the spawn-and-wait stopwatch
bench_time() { local reps=$1; shift; python3 "$REPO/tests/bench_time.py" "$reps" "$WARMUP" "$@"; }

# The simulated host.
mkdir -p /run/netns && mount -t tmpfs -o mode=755 tmpfs /run/netns
mkdir -p "$W/cg"
if mountpoint -q /sys/fs/cgroup; then mount --rbind /sys/fs/cgroup "$W/cg"; fi
mount -t sysfs sysfs /sys                     # /sys/class/net of this netns
if mountpoint -q "$W/cg"; then mount --move "$W/cg" /sys/fs/cgroup; fi
ip link set lo up
# the sim host's "uplink": a veth pair whose both ends stay in this netns
# (a dummy link would do, but the dummy module is not always there)
ip link add sim0 type veth peer name sim1
ip addr add 198.51.100.1/24 dev sim0
ip link set sim1 up
ip link set sim0 up

cleanup_inner() {
    local ids
    ids=$(dk ps -aq 2>/dev/null || true)
    if [ -n "$ids" ]; then dk rm -f $ids >/dev/null || true; fi
    if [ -n "$BASELINE" ] && [ -d "$W/root-baseline" ]; then
        ids=$("$BASELINE" --root "$W/root-baseline" ps -aq 2>/dev/null || true)
        if [ -n "$ids" ]; then "$BASELINE" --root "$W/root-baseline" rm -f $ids >/dev/null || true; fi
    fi
    dk network prune >/dev/null 2>&1 || true
}
trap cleanup_inner EXIT

dk import "$REPO/rootfs/out/busybox" busybox >/dev/null
dk import "$REPO/rootfs/out/python" python >/dev/null
# The imports leave ~50 MB of dirty pages; let them reach the disk now, or their writeback
# (and ext4 journal commits waiting on it) lands in the first timings.
sync

# ---- helpers
now() { date +%s%N; }
# stats FILE -> "n median p90" (values in microseconds in FILE, printed in ms)
stats() {
    sort -n "$1" | awk '{ v[NR] = $1 }
        END { n = NR; if (n == 0) { print 0, "nan", "nan"; exit }
              med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
              k = int(0.9 * n); if (k < 0.9 * n) k++; if (k < 1) k = 1
              printf "%d %.2f %.2f\n", n, med / 1000, v[k] / 1000 }'
}
ROWS=$W/rows
TMED=0   # median timer overhead, subtracted in the "net" column
# row WHAT N MEDIAN P90 TARGET RESULT  (adds NET = MEDIAN - timer overhead when MEDIAN is a number)
row() {
    local net=-
    if [[ $3 =~ ^[0-9.]+$ ]]; then net=$(awk -v a="$3" -v b="$TMED" 'BEGIN { printf "%.2f", a - b }'); fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$net" "$4" "$5" "$6" >>"$ROWS"
}
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "ok" : "MISSED" }'; }
fmt() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }

echo "bench: stopwatch overhead ..." >&2
: >"$W/timer"
bench_time "$REPS" "$W/timer" /bin/true
read -r n med p90 < <(stats "$W/timer")
TMED=$med
row "stopwatch: spawn+wait of /bin/true (in every figure)" "$n" "$med" "$p90" "-" "-"

# ---- 1. --network none vs the namespace+chroot floor (interleaved)
echo "bench: run --rm --network none vs floor ..." >&2
: >"$W/none"; : >"$W/floor"
bench_time "$REPS" "$W/none" "$D" --root "$R" run --rm --network none busybox true \
    ';;' "$W/floor" unshare --pid --net --ipc --uts --mount --fork chroot "$REPO/rootfs/out/busybox" /bin/true
read -r n fmed fp90 < <(stats "$W/floor")
read -r n nmed np90 < <(stats "$W/none")
ratio=$(awk -v a="$nmed" -v b="$fmed" 'BEGIN { printf "%.2f", a / b }')
row "floor: unshare -pniumf chroot busybox /bin/true" "$n" "$fmed" "$fp90" "-" "-"
v1=$(verdict "$nmed" 8); v2=$(verdict "$ratio" 2)
row "1. run --rm --network none busybox true" "$n" "$nmed" "$np90" "<= 8 ms" "$v1"
row "   ratio none / floor (medians)" "-" "${ratio}x" "-" "<= 2x" "$v2"

# ---- 1b. (BASELINE=...) the same command, this build and another, paired
if [ -n "$BASELINE" ]; then
    echo "bench: run --rm --network none, this build vs $BASELINE ..." >&2
    R0=$W/root-baseline
    mkdir -p "$R0"
    "$BASELINE" --root "$R0" import "$REPO/rootfs/out/busybox" busybox >/dev/null
    sync
    : >"$W/none.new"; : >"$W/none.old"
    bench_time "$REPS" "$W/none.new" "$D" --root "$R" run --rm --network none busybox true \
        ';;' "$W/none.old" "$BASELINE" --root "$R0" run --rm --network none busybox true
    read -r n bmed bp90 < <(stats "$W/none.new")
    read -r n omed op90 < <(stats "$W/none.old")
    # The median of the per-round differences (the two files' lines are the same rounds).
    paste "$W/none.new" "$W/none.old" | awk '{ print $1 - $2 }' >"$W/none.diff"
    read -r _ dmed _ < <(stats "$W/none.diff")
    dmed=$(awk -v a="$dmed" 'BEGIN { printf "%+.2f", a }')   # signed: no "net" column
    row "1b. run --rm --network none: this build" "$n" "$bmed" "$bp90" "<= baseline" "$(verdict "$bmed" "$omed")"
    row "    the same, the BASELINE build" "$n" "$omed" "$op90" "-" "-"
    row "    paired difference this - baseline (median)" "$n" "$dmed" "-" "-" "-"
    rm -rf "$R0"
fi

# ---- 2. bridge + published port
echo "bench: run --rm -p 8080:80 (bridge) ..." >&2
: >"$W/bridge"
bench_time "$REPS" "$W/bridge" "$D" --root "$R" run --rm -p 8080:80 busybox true
read -r n med p90 < <(stats "$W/bridge")
row "2. run --rm -p 8080:80 busybox true (bridge)" "$n" "$med" "$p90" "<= 25 ms" "$(verdict "$med" 25)"

# ---- 3. run -d python http.server -> first HTTP reply through the published port
echo "bench: python http.server time-to-first-reply ..." >&2
http_once() {   # prints microseconds, or fails
    local t0 t1 id i=0
    t0=$(now)
    id=$(dk run -d -p 5000:5000 python python3 -m http.server 5000)
    until curl -s --max-time 0.2 -o /dev/null http://127.0.0.1:5000/; do
        i=$((i + 1))
        if [ "$i" -gt 2000 ]; then echo "bench: no HTTP reply from $id" >&2; dk rm -f "$id" >/dev/null; return 1; fi
    done
    t1=$(now)
    dk stop -t 1 "$id" >/dev/null
    dk rm "$id" >/dev/null
    echo $(( (t1 - t0) / 1000 ))
}
http_once >/dev/null
: >"$W/http"
for _ in $(seq "$HTTP_REPS"); do http_once >>"$W/http"; done
read -r n med p90 < <(stats "$W/http")
row "3. run -d -p 5000:5000 python http.server -> 1st reply" "$n" "$med" "$p90" "-" "-"

# ---- 4. many containers: concurrently, then one after another
echo "bench: $N_MANY containers started at once ($MANY_ROUNDS rounds) ..." >&2
# Who wins the locks and the CPUs among 50 starting at once is chance, so one round's 1st
# and 50th are single samples: the verdict compares the medians of the first five and
# the last five launched over all rounds (the 1st and the 50th, medians over the
# rounds, are shown beside it).
mkdir -p "$W/many"
: >"$W/many.all"
wall=""; fails=0; running=""
for r in $(seq "$MANY_ROUNDS"); do
    rm -f "$W"/many/*
    T0=$(now)
    for i in $(seq "$N_MANY"); do
        (
            s=$(now)
            if dk run -d --name "bc$i" busybox sleep 60 >/dev/null 2>"$W/many/err$i"; then rc=0; else rc=$?; fi
            e=$(now)
            echo "$i $s $e $rc" >"$W/many/$i"
        ) &
    done
    wait
    T1=$(now)
    cat "$W"/many/[0-9]* | sort -n >>"$W/many.all"
    f=$(cat "$W"/many/[0-9]* | awk '$4 != 0' | wc -l)
    if [ "$f" -gt 0 ]; then echo "bench: $f concurrent runs failed, e.g.:" >&2; cat "$W"/many/err* | head -5 >&2; fi
    fails=$((fails + f))
    wall="$wall${wall:+, }$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')"
    running="$running${running:+, }$(dk ps -q | wc -l)"
    ids=$(dk ps -aq); [ -n "$ids" ] && dk rm -f $ids >/dev/null
done
awk '{ print int(($3 - $2) / 1000) }' "$W/many.all" >"$W/many.dur"
read -r n med p90 < <(stats "$W/many.dur")
cmax=$(sort -n "$W/many.dur" | tail -1)
# durations (us) of the containers launched at positions [lo, hi], over all rounds
launched() { awk -v lo="$1" -v hi="$2" '$1 >= lo && $1 <= hi { print int(($3 - $2) / 1000) }' "$W/many.all" >"$W/many.sel"; stats "$W/many.sel" | awk '{ print $2 }'; }
c1=$(launched 1 1); cN=$(launched "$N_MANY" "$N_MANY")
f5=$(launched 1 5); l5=$(launched $((N_MANY - 4)) "$N_MANY")
cratio=$(awk -v a="$l5" -v b="$f5" 'BEGIN { printf "%.2f", a / b }')
row "4a. $N_MANY x run -d concurrently: per-container" "$n" "$med" "$p90" "-" "max $(fmt "$(( cmax ))e-3") ms, wall ${wall} ms, $fails failed, ${running} running"
row "    1st / ${N_MANY}th launched (medians of $MANY_ROUNDS rounds)" "-" "$c1 / $cN" "-" "-" "-"
row "    1st-5th / last 5 launched (medians)" "-" "$f5 / $l5" "-" "last <= 1.5x first" "${cratio}x $(verdict "$cratio" 1.5)"

echo "bench: $N_MANY containers one after another ..." >&2
: >"$W/seq"
for i in $(seq "$N_MANY"); do WARMUP=0 bench_time 1 "$W/seq" "$D" --root "$R" run -d --name "bs$i" busybox sleep 60; done
read -r n med p90 < <(stats "$W/seq")
# The first and the last five, by their medians (single samples swing too much).
head -5 "$W/seq" >"$W/seq.first"; tail -5 "$W/seq" >"$W/seq.last"
read -r _ s1 _ < <(stats "$W/seq.first"); read -r _ sN _ < <(stats "$W/seq.last")
sratio=$(awk -v a="$sN" -v b="$s1" 'BEGIN { printf "%.2f", a / b }')
running=$(dk ps -q | wc -l)
row "4b. $N_MANY x run -d sequentially (others running)" "$n" "$med" "$p90" "-" "$running running"
row "    1st-5th / last 5 (medians; up to $((N_MANY - 1)) running)" "-" "$s1 / $sN" "-" "last <= 1.5x first" "${sratio}x $(verdict "$sratio" 1.5)"
ids=$(dk ps -aq); [ -n "$ids" ] && dk rm -f $ids >/dev/null

# ---- 5. a monitor's resident memory
echo "bench: monitor RSS ..." >&2
id=$(dk run -d --name bmon busybox sleep 60)
sleep 0.2
mpid=$(dk inspect "$id" | grep -o '"MonitorPid": *[0-9]*' | grep -o '[0-9]*$')
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$mpid/status")
anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$mpid/status")
row "5. monitor VmRSS (pid $mpid), KiB" "1" "$rss KiB" "-" "<= 1024 KiB" "$(verdict "$rss" 1024)"
row "   monitor RssAnon (its private memory), KiB" "1" "$anon KiB" "-" "-" "-"
# The floor: RSS also counts shared, page-cached file pages the kernel maps around each
# fault, so even coreutils' sleep is far above 1 MiB on these machines.
sleep 30 & spid=$!; sleep 0.2
srss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$spid/status"); kill "$spid" 2>/dev/null || true
row "   floor: /bin/sleep VmRSS, KiB" "1" "$srss KiB" "-" "-" "-"
dk rm -f "$id" >/dev/null

# ---- 6. the firewall drivers: -p against none, 200 published containers, rm -f of 200
for drv in iptables nftables; do
    ids=$(dk ps -aq); [ -n "$ids" ] && dk rm -f $ids >/dev/null
    dk network prune >/dev/null
    echo "bench: firewall driver $drv ..." >&2
    : >"$W/fw-none"; : >"$W/fw-p"
    DOCKLING_FIREWALL_DRIVER=$drv bench_time "$REPS" "$W/fw-none" "$D" --root "$R" run --rm --network none busybox true \
        ';;' "$W/fw-p" "$D" --root "$R" --firewall-driver "$drv" run --rm -p 8080:80 busybox true
    read -r n nmed _ < <(stats "$W/fw-none")
    read -r n pmed pp90 < <(stats "$W/fw-p")
    ratio=$(awk -v a="$pmed" -v b="$nmed" 'BEGIN { printf "%.2f", a / b }')
    row "6. $drv: run --rm -p 8080:80 (none: $nmed)" "$n" "$pmed" "$pp90" "<= 1.5x none" "${ratio}x $(verdict "$ratio" 1.5)"
    # The same, each -p run right after another: the kernel is then still destroying the
    # previous container's netns and veth pair (RCU grace periods, rtnl) in the background.
    : >"$W/fw-b2b"
    DOCKLING_FIREWALL_DRIVER=$drv bench_time "$REPS" "$W/fw-b2b" "$D" --root "$R" --firewall-driver "$drv" run --rm -p 8080:80 busybox true
    read -r n bmed bp90 < <(stats "$W/fw-b2b")
    bratio=$(awk -v a="$bmed" -v b="$nmed" 'BEGIN { printf "%.2f", a / b }')
    row "   $drv: the same, back to back" "$n" "$bmed" "$bp90" "-" "${bratio}x none"
    : >"$W/fw-seq"
    for i in $(seq "$N_FW"); do
        WARMUP=0 bench_time 1 "$W/fw-seq" "$D" --root "$R" --firewall-driver "$drv" run -d --name "fw$i" -p "$((20000 + i)):80" busybox sleep 600
    done
    head -5 "$W/fw-seq" >"$W/fw-first"; tail -5 "$W/fw-seq" >"$W/fw-last"
    read -r _ s1 _ < <(stats "$W/fw-first"); read -r _ sN _ < <(stats "$W/fw-last")
    sratio=$(awk -v a="$sN" -v b="$s1" 'BEGIN { printf "%.2f", a / b }')
    row "   $drv: $N_FW x run -d -p, 1st-5th / last 5" "-" "$s1 / $sN" "-" "last <= 1.5x first" "${sratio}x $(verdict "$sratio" 1.5)"
    ids=$(dk ps -q)
    t0=$(now); dk rm -f $ids >/dev/null; t1=$(now)
    ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')
    row "   $drv: rm -f of $N_FW running, one -p each (ms)" "1" "$ms" "-" "<= 2000 ms" "$(verdict "$ms" 2000)"
done
dk network prune >/dev/null

# ---- 7. dockling-runc beside runc: one busybox bundle, create+start+wait+delete
# (`run`), interleaved. The bundle is the ctr fixture's spec (new pid, ipc, uts, mount
# and net namespaces, Docker's mounts, masked paths, devices, rlimits) with `true` on
# the read-only busybox tree; both runtimes put its groups under dockling/.
if command -v runc >/dev/null; then
    echo "bench: dockling-runc run vs runc run ..." >&2
    mkdir -p "$W/bundle" "$W/runc-root" "$W/dr-root"
    python3 - "$REPO" "$W/bundle/config.json" <<'PY'
import json, sys
repo, out = sys.argv[1], sys.argv[2]
c = json.load(open(repo + "/tests/fixtures/oci-runtime/ctr-1.6-run.config.json"))
c["process"]["args"] = ["true"]
c["root"] = {"path": repo + "/rootfs/out/busybox", "readonly": True}
c["linux"]["cgroupsPath"] = "/dockling/bench-runc"
json.dump(c, open(out, "w"))
PY
    DR=$(dirname "$D")/dockling-runc
    ln -sf dockling "$DR"
    : >"$W/drunc"; : >"$W/runc"
    (cd "$W/bundle" && bench_time "$REPS" "$W/drunc" "$DR" --root "$W/dr-root" run b1 \
        ';;' "$W/runc" runc --root "$W/runc-root" run b2)
    read -r n rmed rp90 < <(stats "$W/runc")
    read -r n dmed dp90 < <(stats "$W/drunc")
    half=$(awk -v a="$rmed" 'BEGIN { printf "%.2f", a / 2 }')
    row "7. runc run (bundle: ctr's spec, busybox true)" "$n" "$rmed" "$rp90" "-" "-"
    row "   dockling-runc run (create+start+wait+delete)" "$n" "$dmed" "$dp90" "<= 0.5x runc ($half)" "$(verdict "$dmed" "$half")"
else
    row "7. dockling-runc vs runc" "-" "-" "-" "-" "runc not installed"
fi

# ---- the end: all containers gone, network pruned
trap - EXIT
ids=$(dk ps -aq); if [ -n "$ids" ]; then dk rm -f $ids >/dev/null; fi
dk network prune >/dev/null
EOF
)
# ---------------------------------------------------------------- end of inside

R=$WORK/root
mkdir -p "$R"
echo "bench: simulated host, root $R (REPS=$REPS WARMUP=$WARMUP HTTP_REPS=$HTTP_REPS N_MANY=$N_MANY MANY_ROUNDS=$MANY_ROUNDS)" >&2
status=0
unshare --mount --propagation private --net --fork bash -c "$INNER" bench-simhost "$D" "$R" "$WORK" "$REPO" || status=$?

if [ -s "$WORK/rows" ]; then
    echo
    echo "dockling benchmarks  ($(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ))  times in ms"
    { printf 'what\tn\tmedian\tnet\tp90\ttarget\tresult\n'; cat "$WORK/rows"; } | column -t -s $'\t'
fi

AFTER=$(host_state)
if [ "$BEFORE" != "$AFTER" ]; then
    echo "tests/bench.sh: the real host's netns/links changed:" >&2
    diff <(echo "$BEFORE") <(echo "$AFTER") >&2 || true
    status=1
else
    echo "host check: ip netns list and ip link unchanged"
fi
exit "$status"
