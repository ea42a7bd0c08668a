#!/usr/bin/env bash
# examples/04-publish.sh -- publishing a port: `-p 8080:8000` is one DNAT rule.
#
# A container's address (10.131.0.x) is private to this host. To let others reach
# a server inside it, the host rewrites the *destination* of packets that arrive
# for one of its own addresses on the published port: DNAT to container:port
# (step 6 of the netns tutorial). dockling puts that rule in its chain
# DOCKLING-DNAT, which is entered from
#   PREROUTING  packets from other machines (and from containers), never to 127.0.0.0/8,
#   OUTPUT      packets the host sends itself, 127.0.0.1 included.
# There is no proxy process: the kernel rewrites the packets, so the server sees
# the client's real address.
#
# Run as root: sudo bash examples/04-publish.sh   (PORT=... picks another host port)
set -euo pipefail
# shellcheck source=examples/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${PORT:-8080}   # the host port; the server listens on 8000 inside
NAME=demo-web
trap 'cleanup "$NAME"' EXIT   # remove the container (and so its rule) even if a step fails
need_image python
"$DOCKLING" rm -f "$NAME" >/dev/null 2>&1 || true   # a leftover of an interrupted run

# GET a URL, retrying while the server starts (up to ~10 s).
fetch() {
    for _ in $(seq 50); do
        curl -fsS --max-time 2 "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "no answer from $1" >&2
    return 1
}

step "1. Run a web server in a container, publishing host port $PORT to its port 8000 (--explain)"
# The last --explain line is the DNAT rule:
#   iptables -t nat -A DOCKLING-DNAT -p tcp -m tcp --dport $PORT ... -j DNAT --to-destination 10.131.0.x:8000
show "$DOCKLING" --explain run -d --name "$NAME" -p "$PORT:8000" -w /srv python \
    sh -c 'echo "hello from demo-web" > index.html && exec python3 -m http.server 8000'
IP=$(field "$NAME" .NetworkSettings.IPAddress)

step "2. The host reaches the container directly on the bridge (no NAT needed here)"
show fetch "http://$IP:8000/"

step "3. The DNAT rule, and where the kernel consults it"
show iptables -t nat -S DOCKLING-DNAT
show iptables -t nat -S PREROUTING
show iptables -t nat -S OUTPUT

step "4. Through the published port, from the host itself (OUTPUT chain)"
# 127.0.0.1 works because dockling sets route_localnet=1 on the bridge and
# masquerades 127.0.0.0/8 going to it (a reply to 127.0.0.1 could not come back).
show fetch "http://127.0.0.1:$PORT/"
HOST_IP=$(ip -4 -o addr show scope global | awk '$2 != "dockling0" { sub(/\/.*/, "", $4); print $4; exit }')
if [ -n "$HOST_IP" ]; then
    show fetch "http://$HOST_IP:$PORT/"
    echo "(from another machine: curl http://$HOST_IP:$PORT/ -- that one goes through PREROUTING)"
fi

step "5. The rule counted the connections (inspect --rules reads iptables' live counters)"
show "$DOCKLING" inspect --rules "$NAME"

step "6. The server saw who connected: no proxy in between"
show "$DOCKLING" logs "$NAME"

step "7. Remove the container: its DNAT rule goes with it (--explain)"
# iptables-nft keeps its rules in nf_tables (try: nft list table ip nat), so dockling
# removes the rule by its handle in the same transaction as the container's port filter:
# one nft line. "iptables -t nat -D DOCKLING-DNAT ..." would remove the same rule.
show "$DOCKLING" --explain rm -f "$NAME"
show iptables -t nat -S DOCKLING-DNAT
echo "publish demo done"
