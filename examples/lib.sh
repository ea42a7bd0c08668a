# shellcheck shell=bash
# examples/lib.sh -- helpers shared by the numbered examples (sourced, not run).
#
# The examples work in class (sudo bash examples/01-isolation.sh) and in the test
# suite, which runs them inside a simulated host with
#   DOCKLING=/path/to/dockling DOCKLING_ROOT=/tmp/... WORLD=198.51.100.2
# dockling itself reads DOCKLING_ROOT (the same as its --root flag).

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$EXAMPLES_DIR")

# The dockling binary: $DOCKLING, else `dockling` on PATH, else this checkout's build.
DOCKLING=${DOCKLING:-dockling}
if ! command -v "$DOCKLING" >/dev/null 2>&1 && [ -x "$REPO_DIR/target/release/dockling" ]; then
    DOCKLING=$REPO_DIR/target/release/dockling
fi
command -v "$DOCKLING" >/dev/null 2>&1 || {
    echo "dockling not found: build it (bash scripts/build.sh) or set DOCKLING=/path/to/dockling" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || { echo "run as root: sudo bash $0" >&2; exit 1; }

# The walk-through shows iptables rules, so it uses the iptables firewall driver (the
# default; `--firewall-driver nftables` keeps the same rules in `nft list table ip dockling`).
export DOCKLING_FIREWALL_DRIVER=iptables

# A heading before each step of the walk-through.
step() {
    echo
    echo "=== $*"
}

# Print a command the way a person would type it (quoted where needed), then run it.
show() {
    local arg line=\$
    for arg in "$@"; do
        if [ "$arg" = "$DOCKLING" ] && [ "$line" = \$ ]; then
            arg=dockling
        elif [[ -z $arg || $arg == *[!A-Za-z0-9_./:=@%+,-]* ]]; then
            arg="'${arg//\'/\'\\\'\'}'"
        fi
        line+=" $arg"
    done
    echo "$line"
    "$@"
}

# Import rootfs/out/NAME as image NAME unless `dockling images` already lists it.
need_image() {
    local name=$1 tree="$REPO_DIR/rootfs/out/$1"
    if "$DOCKLING" images | awk 'NR > 1 { print $1 }' | grep -qx "$name"; then
        return 0
    fi
    [ -d "$tree/bin" ] || {
        echo "image tree $tree is missing: build it with sudo bash rootfs/build.sh $name" >&2
        exit 1
    }
    echo "(importing $tree as image $name)"
    "$DOCKLING" import "$tree" "$name" >/dev/null
}

# Does the bridge exist (i.e. has any container used the network since the last prune)?
bridge_exists() {
    ip link show dockling0 >/dev/null 2>&1
}

# The field of `dockling inspect` for one container, e.g. field demo '.NetworkSettings.IPAddress'.
field() {
    "$DOCKLING" inspect --format "{{$2}}" "$1"
}

# Leave the host as we found it: remove the named containers and, if this script
# made the bridge, the network too. Used from `trap ... EXIT`, so it also runs when
# a step fails; it must never fail itself.
HAD_BRIDGE=no
bridge_exists && HAD_BRIDGE=yes
cleanup() {
    local status=$? name
    for name in "$@"; do
        "$DOCKLING" rm -f "$name" >/dev/null 2>&1 || true
    done
    if [ "$HAD_BRIDGE" = no ]; then
        "$DOCKLING" network prune >/dev/null 2>&1 || true
    fi
    return "$status"
}
