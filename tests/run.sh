#!/usr/bin/env bash
# tests/run.sh [ARGS...]  -- the one command that runs dockling's whole test suite.
#
# Run as root on a Debian/Ubuntu machine (fresh or not): installs the missing apt
# packages, picks an iptables backend that works, builds the release binary and
# the default root filesystems, then runs the gates (cargo fmt --check, cargo clippy
# -D warnings) and `cargo test --release`. ARGS are passed
# to the test binaries (after `--`), e.g. `tests/run.sh network` or `--nocapture`.
# The network tests run twice: with the iptables firewall driver, then with nftables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$(id -u)" -eq 0 ] || { echo "tests/run.sh: run as root (sudo bash tests/run.sh)" >&2; exit 1; }

# Host tools the runtime and the tests use.
bash scripts/apt-ensure.sh iptables nftables busybox-static iproute2 procps util-linux \
    python3 curl tmux psmisc docker-registry skopeo openssl containerd runc docker.io

# iptables: keep the default (nft) backend if it works in a fresh network
# namespace, as containers' firewall rules need; otherwise switch to legacy.
ipt_ok() { unshare --net "$1" -t nat -L -n >/dev/null 2>&1; }
if ! ipt_ok iptables; then
    if [ -x /usr/sbin/iptables-legacy ] && ipt_ok /usr/sbin/iptables-legacy; then
        echo "tests/run.sh: iptables nft backend unusable, switching to iptables-legacy" >&2
        update-alternatives --set iptables /usr/sbin/iptables-legacy
        update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy || true
    else
        echo "tests/run.sh: warning: no working iptables backend (nat table)" >&2
    fi
fi

# cargo: sudo may drop ~/.cargo/bin from PATH.
if ! command -v cargo >/dev/null; then
    PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found (install Rust)" >&2; exit 1; }
fi

# Gates: formatting, and clippy with every warning an error (the layering check,
# tests/layers.rs, runs with the tests below).
for tool in rustfmt clippy; do
    command -v "cargo-${tool/rustfmt/fmt}" >/dev/null || rustup component add "$tool" \
        || { echo "tests/run.sh: cargo $tool is missing (rustup component add $tool)" >&2; exit 1; }
done
cargo fmt --check || { echo "tests/run.sh: cargo fmt --check failed: run cargo fmt" >&2; exit 1; }

# The same static build as the README's (scripts/build.sh), so the tests run what users run.
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo clippy --all-targets -- -D warnings
bash scripts/build.sh
bash rootfs/build.sh busybox python
cargo test --release -- --test-threads=4 "$@"
# The network tests again with the other firewall driver (the run above used the
# default, iptables): both drivers must give the same network.
DOCKLING_FIREWALL_DRIVER=nftables cargo test --release --test network --test port_security \
    --test spoofing --test explain --test lifecycle -- --test-threads=4 "$@"
