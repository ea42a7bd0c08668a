#!/usr/bin/env bash
# examples/03-egress.sh -- a container reaches the outside world: route, forwarding, NAT.
#
# Three things must be true for a packet from a container to reach the world and
# for its reply to come back (steps 5.1 to 5.3 of the netns tutorial):
#   1. the container has a default route via the bridge (10.131.0.1);
#   2. the host forwards packets between interfaces: net.ipv4.ip_forward=1;
#   3. MASQUERADE rewrites the private source address 10.131.0.x into the host's
#      own address on the way out, so the world can answer (conntrack undoes it
#      for the replies).
#
# WORLD is the outside address to talk to (default 1.1.1.1, port 80); the test
# suite sets WORLD=198.51.100.2, a server in a simulated "world" namespace.
#
# Run as root: sudo bash examples/03-egress.sh   (or WORLD=ADDRESS WORLD_PORT=PORT ...)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORLD=${WORLD:-1.1.1.1}
WORLD_PORT=${WORLD_PORT:-80}
NAME=demo-egress
trap 'cleanup "$NAME"' EXIT   # remove the container even if a step fails
need_image busybox
"$DOCKLING" rm -f "$NAME" >/dev/null 2>&1 || true   # a leftover of an interrupted run

step "0. Start from no network, so --explain below shows the one-time host setup"
# Removes the bridge and dockling's iptables chains, unless a container uses them.
show "$DOCKLING" network prune
bridge_exists || HAD_BRIDGE=no   # whatever we make from here on, the trap removes

step "1. Without a network there is no way out (the tutorial's 'Network is unreachable')"
# --network none: a new netns with only lo, no eth0 and no route. ping must fail.
if show "$DOCKLING" run --rm --network none busybox sh -c "ip route; ping -c 1 -W 2 $WORLD"; then
    echo "unexpected: a container without a network reached $WORLD" >&2
    exit 1
fi
echo "(failed, as expected: no interface and no route to $WORLD)"

step "2. A container on the bridge; the first one also prepares the host (--explain)"
# Look for these lines on stderr (the sysctl only if forwarding was still off):
#   sysctl -w net.ipv4.ip_forward=1
#   iptables -t nat -A DOCKLING-POSTROUTING -s 10.131.0.0/24 ! -o dockling0 -j MASQUERADE
show "$DOCKLING" --explain run -d --name "$NAME" busybox sleep 600

step "3. Route: everything not on 10.131.0.0/24 goes to the bridge (tutorial 5.1)"
show ip netns exec "$NAME" ip route

step "4. Forwarding: the host passes packets from dockling0 on to its uplink (tutorial 5.2)"
echo "\$ cat /proc/sys/net/ipv4/ip_forward"
cat /proc/sys/net/ipv4/ip_forward

step "5. NAT: MASQUERADE for packets that come from the subnet and leave by another interface (tutorial 5.3)"
# POSTROUTING jumps to dockling's own chain, which is easy to list and to remove.
show iptables -t nat -S POSTROUTING
show iptables -t nat -S DOCKLING-POSTROUTING

step "6. Reach $WORLD from the container"
show "$DOCKLING" exec "$NAME" ping -c 2 -W 2 "$WORLD" ||
    echo "(no ping reply: ICMP may be filtered on this network; the TCP request below is what counts)"
# A plain HTTP request with nc (busybox has no curl). A server out there sees the
# host's address as the client, never 10.131.0.x: that is MASQUERADE at work.
show "$DOCKLING" exec "$NAME" sh -c \
    "printf 'GET / HTTP/1.0\r\nHost: $WORLD\r\n\r\n' | timeout 15 nc -w 5 $WORLD $WORLD_PORT"
echo
echo "(the reply came back: route, forwarding and NAT all worked)"

step "7. The MASQUERADE rule's counters went up"
# NAT is decided once per connection, so these count connections' first packets.
show iptables -t nat -L DOCKLING-POSTROUTING -v -n

step "8. Remove the container (the bridge and the rules stay until 'dockling network prune')"
show "$DOCKLING" rm -f "$NAME"
echo "egress demo done"
