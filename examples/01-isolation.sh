#!/usr/bin/env bash
# examples/01-isolation.sh -- what makes a process a "container": namespaces.
#
# A container is an ordinary Linux process started in *new namespaces*. Each
# namespace gives it a private copy of one thing the kernel normally shares:
#   pid   its own process numbers: the command is PID 1 and sees only its children
#   uts   its own host name
#   mnt   its own mount table: an overlay of the image as /, its own /proc and /dev
#   (ipc, net and cgroup too; 02-network.sh is about net.)
# We start one container and look at it from the inside and from the host.
#
# Run as root: sudo bash examples/01-isolation.sh
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=demo-iso
trap 'cleanup "$NAME"' EXIT   # remove the container even if a step fails
need_image busybox
"$DOCKLING" rm -f "$NAME" >/dev/null 2>&1 || true   # a leftover of an interrupted run

step "1. Start a container and watch what dockling does on the host (--explain)"
# --network none keeps this example about pid, uts and mount (the network is 02's).
# Each --explain line (on stderr) is the shell command a person would type for one
# step: clone into new namespaces, mount the overlay, /proc and /dev, pivot_root,
# set the host name. 'sleep 600' just keeps the container alive while we look.
show "$DOCKLING" --explain run -d --name "$NAME" --hostname demo-box --network none busybox sleep 600
PID=$(field "$NAME" .State.Pid)

step "2. PID namespace: inside, the command is PID 1 and sees only its own processes"
# dockling exec enters the container's namespaces (like nsenter) and runs ps there.
show "$DOCKLING" exec "$NAME" ps
# The host sees every process, so the very same sleep has an ordinary host PID.
echo "on the host, the container's PID 1 is PID $PID:"
show ps -o pid,ppid,args -p "$PID"

step "3. The namespaces themselves: the host's and the container's are different objects"
# /proc/PID/ns/* are handles on namespaces; equal numbers mean the same namespace.
printf '%-8s %-22s %-22s\n' NS HOST CONTAINER
for ns in pid uts mnt ipc net; do
    host=$(readlink "/proc/self/ns/$ns")
    ctr=$(readlink "/proc/$PID/ns/$ns")
    printf '%-8s %-22s %-22s %s\n' "$ns" "$host" "$ctr" "$([ "$host" = "$ctr" ] && echo SHARED || echo private)"
done

step "4. UTS namespace: its own host name"
echo "host name on the host:      $(hostname)"
echo "host name in the container: $("$DOCKLING" exec "$NAME" hostname)"

step "5. Mount namespace: its own / (an overlay on the image), /proc and /dev"
show "$DOCKLING" exec "$NAME" sh -c 'grep -E " / | /proc | /dev " /proc/mounts'
# Writes go to the container's own upper dir; the image underneath stays read-only,
# which is why many containers can share one image.
show "$DOCKLING" exec "$NAME" sh -c 'echo written inside > /hello.txt; cat /hello.txt'
UPPER=$(field "$NAME" .GraphDriver.Data.UpperDir)
echo "on the host, the file is in the container's upper dir:"
show ls "$UPPER"
# The container's mounts live only in its mount namespace: the host has none of them.
if grep -qF "$(field "$NAME" .GraphDriver.Data.MergedDir)" /proc/self/mountinfo; then
    echo "the host sees the container's root mount (unexpected)"
else
    echo "the host's mount table has no trace of the container's root: it is private"
fi

step "6. Stop and remove the container (the trap would do it too)"
show "$DOCKLING" rm -f "$NAME"
echo "isolation demo done"
