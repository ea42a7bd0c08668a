#!/usr/bin/env bash
# examples/00-quickstart.sh  -- dockling's main job, end to end (run as root).
#
# Installs what is missing, builds dockling and the default images, then runs a
# Python web server in a container, publishes its port 5000 on the host and
# fetches the page through it. Cleans up after itself, even on failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" -eq 0 ] || { echo "run as root: sudo bash $0" >&2; exit 1; }
bash scripts/apt-ensure.sh iptables nftables busybox-static iproute2 procps util-linux \
    python3 curl tmux psmisc
command -v cargo >/dev/null || PATH="$HOME/.cargo/bin:$PATH"   # sudo drops it

bash scripts/build.sh
bash rootfs/build.sh busybox python
D=target/release/dockling

# Remove the demo container and unused networks however we leave.
cleanup() {
    "$D" rm -f web >/dev/null 2>&1 || true
    "$D" network prune >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup   # leftovers of an earlier, interrupted run

# Import the default trees as images, unless already there.
have_image() { "$D" images | awk 'NR > 1 { sub(/:.*/, "", $1); print $1 }' | grep -qx "$1"; }
for img in busybox python; do
    have_image "$img" || "$D" import "rootfs/out/$img" "$img"
done
"$D" images

set -x
"$D" run -d -p 5000:5000 --name web python python3 -m http.server 5000
set +x

# The server needs a moment to start: retry for ~10 s.
for _ in $(seq 20); do
    if page=$(curl -fsS http://localhost:5000/ 2>/dev/null); then break; fi
    page=""
    sleep 0.5
done
[ -n "$page" ] || { echo "quickstart: no answer on http://localhost:5000/" >&2; "$D" logs web || true; exit 1; }
echo "--- http://localhost:5000/ answered:"
echo "$page"
echo "---"

set -x
"$D" ps
"$D" stop web
"$D" rm web
"$D" network prune
