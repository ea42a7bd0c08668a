#!/usr/bin/env bash
# scripts/build.sh [CARGO ARGS...] -- builds dockling (release, static; see
# scripts/cargo-env.sh) and links the binaries into target/release/, where the
# README, the examples and the benchmark look for them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release "$@"
mkdir -p target/release
for bin in dockling dockling-monitor; do
    if [ -x "target/$DOCKLING_TRIPLE/release/$bin" ]; then
        ln -f "target/$DOCKLING_TRIPLE/release/$bin" "target/release/$bin"
    fi
done
# dockling-runc: the same program under runc's name (it reads its name from argv[0]).
ln -sfn dockling target/release/dockling-runc
