#!/usr/bin/env bash
# apt-ensure.sh PKG...  -- install the Debian/Ubuntu packages that are missing.
# Runs `apt-get update` (once) only when something actually has to be installed,
# so it is a fast no-op on a machine that already has everything.
set -euo pipefail

missing=()
for pkg in "$@"; do
    # db:Status-Status is "installed" only for fully installed packages.
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "apt-ensure: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi
echo "apt-ensure: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages such as containerd and docker.io start their system daemons when installed;
# the tests run their own, inside simulated hosts, and the machine's must not start (a
# system dockerd rewrites the host's iptables). policy-rc.d says no, for this install only.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard"
    chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
