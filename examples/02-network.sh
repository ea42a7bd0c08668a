#!/usr/bin/env bash
# examples/02-network.sh -- the bridge, a veth pair per container, `ip netns exec`.
#
# This is the classic netns + bridge tutorial (ip netns add ns1, ip link add veth0
# type veth peer name ceth0, ip link set veth0 master br0, ...) done by dockling:
#   - one bridge, dockling0 with 10.131.0.1/24: a virtual switch, and the
#     containers' gateway;
#   - per container, a veth pair (a virtual cable): the host end veth<id> is
#     plugged into the bridge, the other end is the container's eth0;
#   - eth0 gets an address from 10.131.0.0/24 and a default route via the bridge;
#   - the container's network namespace is named after it, so `ip netns exec NAME`
#     works exactly as in the tutorial.
#
# Run as root: sudo bash examples/02-network.sh
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

A=demo-net-a
B=demo-net-b
trap 'cleanup "$A" "$B"' EXIT   # remove both containers even if a step fails
need_image busybox
"$DOCKLING" rm -f "$A" "$B" >/dev/null 2>&1 || true   # leftovers of an interrupted run

step "1. Start two containers, like the tutorial's ns1 and ns2 (--explain shows the ip commands)"
# If no container used the network yet, the first run also creates the bridge:
# 'ip link add dockling0 type bridge', its address, 'ip link set dockling0 up'.
# Then, for this container: the netns name, the veth pair, eth0's address, lo,
# and the default route.
show "$DOCKLING" --explain run -d --name "$A" busybox sleep 600
show "$DOCKLING" run -d --name "$B" busybox sleep 600
IP_A=$(field "$A" .NetworkSettings.IPAddress)
IP_B=$(field "$B" .NetworkSettings.IPAddress)
GW=$(field "$A" .NetworkSettings.Gateway)
VETH_A=$(field "$A" .NetworkSettings.HostVeth)

step "2. On the host: the bridge, with the gateway address"
show ip -br addr show dockling0

step "3. On the host: one veth per container, plugged into the bridge ('master dockling0')"
show ip -br link show master dockling0
# The host end's peer is in another namespace: 'link-netns demo-net-a'.
show ip link show "$VETH_A"

step "4. The container's network namespace has a name, so ip netns exec works"
show ip netns list
# Inside: lo and eth0 (the other end of the cable) with the container's address ...
show ip netns exec "$A" ip -br addr
# ... and a default route via the bridge, as the tutorial adds by hand.
show ip netns exec "$A" ip route

step "5. Containers reach the bridge (their gateway) and each other through it"
show "$DOCKLING" exec "$A" ping -c 2 -W 2 "$GW"
show "$DOCKLING" exec "$A" ping -c 2 -W 2 "$IP_B"
# A learned B's MAC address (02:42 + its IPv4 address) by ARP across the bridge.
show ip netns exec "$A" ip neigh show "$IP_B"
echo "$A ($IP_A) and $B ($IP_B) talk through dockling0"

step "6. Remove the containers: the kernel deletes each veth pair with its netns"
show "$DOCKLING" rm -f "$A" "$B"
show ip -br link show master dockling0
echo "network demo done"
