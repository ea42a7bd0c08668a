# shellcheck shell=bash
# scripts/cargo-env.sh -- sourced by scripts/build.sh and tests/run.sh.
#
# dockling is linked statically (static-pie: still position-independent, so ASLR
# stays): every dockling command is a fresh exec of a ~10 MB binary, and skipping the
# dynamic loader and the shared libraries saves ~0.7 ms per command (see
# tests/bench.sh); the monitor, a small static program, stays far below 1 MiB
# resident. Naming the target keeps these flags off build scripts and proc-macros,
# which must stay dynamic. Binaries land in target/<host triple>/release/
# (scripts/build.sh links them into target/release/).
command -v cargo >/dev/null || PATH="$HOME/.cargo/bin:$PATH"   # sudo drops it
if [ -n "${RUSTFLAGS:-}" ]; then
    # cargo lets RUSTFLAGS win over the per-target flags below: the build would be dynamic.
    echo "scripts/cargo-env.sh: RUSTFLAGS is set; unset it for dockling's static build" >&2
fi
DOCKLING_TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_BUILD_TARGET=$DOCKLING_TRIPLE
_var=CARGO_TARGET_$(echo "$DOCKLING_TRIPLE" | tr 'a-z.-' 'A-Z__')_RUSTFLAGS
export "$_var=-C target-feature=+crt-static"
unset _var
