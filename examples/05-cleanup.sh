#!/usr/bin/env bash
# examples/05-cleanup.sh -- stop, rm, network prune, and proof that nothing is left.
#
# Everything `run` changed on the host must be undone, in the reverse order:
#   stop           the process ends; dockling deletes the container's DNAT rules,
#                  its netns name and its address lease; the kernel destroys the
#                  netns and the veth pair with it (nobody holds the netns any more)
#   rm             the container's record, logs and overlay upper dir
#   network prune  once no container uses it: dockling's iptables chains, their
#                  hooks in PREROUTING/OUTPUT/POSTROUTING/FORWARD, and the bridge
# Then we look for every trace of the container, and print "nothing left".
#
# Run as root: sudo bash examples/05-cleanup.sh   (PORT=... picks another host port)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${PORT:-8081}
NAME=demo-clean
trap 'cleanup "$NAME"' EXIT   # remove the container even if a step fails
need_image busybox
"$DOCKLING" rm -f "$NAME" >/dev/null 2>&1 || true   # a leftover of an interrupted run

step "1. Something to clean up: a web server with a published port"
show "$DOCKLING" run -d --name "$NAME" -p "$PORT:80" busybox httpd -f -p 80 -h /etc
ID=$(field "$NAME" .Id)
PID=$(field "$NAME" .State.Pid)
IP=$(field "$NAME" .NetworkSettings.IPAddress)
VETH=$(field "$NAME" .NetworkSettings.HostVeth)
CDIR=$(dirname "$(field "$NAME" .GraphDriver.Data.UpperDir)")

step "2. What it put on the host"
show ip -br link show "$VETH"
show ip netns list
show iptables -t nat -S DOCKLING-DNAT
show "$DOCKLING" network ls
echo "(plus its process $PID, and its files in $CDIR)"

step "3. stop (--explain): the rule and the netns name go; the kernel takes the veth"
# httpd is PID 1 of its PID namespace. The kernel gives PID 1 no default signal
# actions, so it ignores SIGTERM; after -t 1 second stop sends SIGKILL: exit 137.
show "$DOCKLING" --explain stop -t 1 "$NAME"
show "$DOCKLING" ps -a

step "4. rm (--explain): the record and the container's files"
show "$DOCKLING" --explain rm "$NAME"

step "5. network prune (--explain): the chains, their hooks and the bridge"
show "$DOCKLING" --explain network prune

step "6. Look for anything left"
LEFT=()
# The process is gone.
[ ! -e "/proc/$PID" ] || LEFT+=("process $PID")
# The kernel destroys the veth pair with the netns, a moment after the last
# process left it: allow it up to 5 s.
for _ in $(seq 50); do ip link show "$VETH" >/dev/null 2>&1 || break; sleep 0.1; done
! ip link show "$VETH" >/dev/null 2>&1 || LEFT+=("link $VETH")
! ip netns list | awk '{ print $1 }' | grep -qx "$NAME" || LEFT+=("netns name $NAME")
RULES=$(iptables-save | grep -F -e "dockling:${ID:0:12}" -e "--to-destination $IP:" || true)
[ -z "$RULES" ] || LEFT+=("iptables rules: $RULES")
[ ! -e "$CDIR" ] || LEFT+=("directory $CDIR")
! "$DOCKLING" ps -a -q --no-trunc | grep -qx "$ID" || LEFT+=("container $ID")
if bridge_exists; then
    echo "(other containers still use the network: dockling0 and the shared chains stay)"
else
    SHARED=$(iptables-save | grep -i dockling || true)
    [ -z "$SHARED" ] || LEFT+=("iptables: $SHARED")
fi
show ip -br link
show ip netns list
echo "\$ iptables-save | grep -ci dockling"
iptables-save | grep -ci dockling || true
# net.ipv4.ip_forward stays 1: it is a host-wide switch other software may rely
# on, so dockling (like Docker) does not turn it off again.
if [ ${#LEFT[@]} -gt 0 ]; then
    printf 'LEFT BEHIND: %s\n' "${LEFT[@]}" >&2
    exit 1
fi
echo "nothing left: no process, veth, netns name, iptables rule or files of $NAME"
