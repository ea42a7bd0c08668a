#!/usr/bin/env bash
# rootfs/build.sh NAME...  -- build default root filesystem trees in rootfs/out/NAME/.
#
#   busybox  statically linked busybox, every applet as a symlink, a minimal /etc.
#   python   busybox + the host's Debian/Ubuntu python3 interpreter, its stdlib and
#            every shared library it (or a lib-dynload module) needs.
#
# Everything comes from the machine's own apt sources. A tree is rebuilt only when
# this script changed (stamp file), so a second run is a no-op. Each tree is built
# in a temp dir, checked with chroot, and only then renamed into place.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$here/out"
stamp_key=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

[ $# -gt 0 ] || { echo "usage: $0 busybox|python..." >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "$0: must run as root (apt-get, chroot)" >&2; exit 1; }

# Files of an installed package whose path ends in $2.
pkg_file() { dpkg -L "$1" | awk -v re="$2\$" '$0 ~ re && !n++'; }

# Copy host file $1 to the same path in tree $2, following symlinks.
copy_host() { mkdir -p "$2$(dirname "$1")" && cp -L --preserve=mode,timestamps "$1" "$2$1"; }

# Shared libraries (and the dynamic loader) that ELF files "$@" need, as ldd prints them.
needed_libs() {
    local f
    for f in "$@"; do
        # static or non-ELF files make ldd fail: nothing to copy for them
        ldd "$f" 2>/dev/null || true
    done | awk '
        / => not found/ { print "MISSING " $1; next }
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\// { print $1 }' | sort -u
}

# Run a command in tree $1 with chroot; it must print exactly "ok".
check() {
    local got
    got=$(chroot "$@" 2>&1) || true
    [ "$got" = ok ] || { echo "rootfs: check failed: chroot $*" >&2; echo "$got" >&2; exit 1; }
}

build_busybox() {
    local t=$1 bb applet
    "$here/../scripts/apt-ensure.sh" busybox-static
    bb=$(pkg_file busybox-static /bin/busybox)
    # Base layout. lib/ points into usr/ like a merged-/usr Debian/Ubuntu system.
    mkdir -p "$t"/{bin,sbin,usr/bin,usr/sbin,usr/lib,proc,sys,dev,etc,var/tmp,run,root,home/user,tmp}
    ln -s usr/lib "$t/lib"
    chmod 1777 "$t/tmp" "$t/var/tmp"
    chmod 700 "$t/root"
    chown 1000:1000 "$t/home/user"
    cp "$bb" "$t/bin/busybox"
    # One symlink per applet at its canonical place (bin/sh, sbin/ip, usr/bin/wget, ...).
    for applet in $("$bb" --list-full); do
        case "$applet" in bin/busybox|linuxrc) continue;; esac
        mkdir -p "$t/$(dirname "$applet")"
        ln -sf /bin/busybox "$t/$applet"
    done
    # Minimal /etc: users root, nobody and an unprivileged "user" (uid 1000).
    cat > "$t/etc/passwd" <<'EOT'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
EOT
    cat > "$t/etc/group" <<'EOT'
root:x:0:
nogroup:x:65534:
user:x:1000:
EOT
    cat > "$t/etc/hosts" <<'EOT'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
EOT
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$t/etc/nsswitch.conf"
    : > "$t/etc/hostname"      # the runtime sets the hostname
    : > "$t/etc/resolv.conf"   # mount point / placeholder for the runtime
    check "$t" /bin/sh -c 'echo ok'
}

build_python() {
    local t=$1 py pyv stdlib dynload lib libs
    build_busybox "$t"
    # "python3" (not just python3-minimal) brings the full stdlib, e.g. http.server.
    "$here/../scripts/apt-ensure.sh" python3
    py=$(readlink -f /usr/bin/python3)     # e.g. /usr/bin/python3.11 (never a pyenv shim)
    pyv=$(basename "$py")
    stdlib=$("$py" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
    dynload=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("DESTSHARED"))')

    copy_host "$py" "$t"
    ln -s "$pyv" "$t/usr/bin/python3"
    # Stdlib without tests, GUI, ensurepip and build files; no host bytecode.
    mkdir -p "$t$stdlib"
    tar -C "$stdlib" -cf - \
        --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
        --exclude=./ensurepip --exclude=./lib2to3 --exclude='./config-*' \
        --exclude=__pycache__ --exclude='_test*.so' --exclude='xx*.so' \
        --exclude=./sitecustomize.py . | tar -C "$t$stdlib" -xf -
    # lib-dynload lives inside the stdlib on Debian; copy it if it does not.
    if [ ! -d "$t$dynload" ]; then
        mkdir -p "$t$dynload"
        cp -a "$dynload/." "$t$dynload/"
    fi

    # Every shared library of the interpreter and of the extension modules,
    # at the path ldd reports (keeps /lib64 vs /lib/<multiarch> layout).
    libs=$(needed_libs "$py" "$t$dynload"/*.so)
    if grep -q '^MISSING' <<<"$libs"; then
        echo "python: unresolved libraries:" >&2; grep '^MISSING' <<<"$libs" >&2; exit 1
    fi
    for lib in $libs; do copy_host "$lib" "$t"; done

    # Precompile the stdlib (same interpreter, so same bytecode) so that containers
    # don't recompile it on every start; -d records the in-container path.
    "$py" -m compileall -q -j0 -d "$stdlib" "$t$stdlib" >/dev/null
    check "$t" /usr/bin/python3 -c 'import http.server, socket, json; print("ok")'
}

mkdir -p "$out"
for name in "$@"; do
    case "$name" in busybox|python) ;; *) echo "$0: unknown tree '$name'" >&2; exit 2;; esac
    stamp="$out/.$name.stamp"
    if [ -d "$out/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$stamp_key" ]; then
        echo "rootfs: $name is up to date ($out/$name)"
        continue
    fi
    echo "rootfs: building $name ..."
    tmp="$out/.$name.tmp.$$"
    rm -rf "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    mkdir "$tmp"
    "build_$name" "$tmp"
    # Swap the finished tree in; the old one (if any) is removed afterwards.
    rm -f "$stamp"
    if [ -d "$out/$name" ]; then mv "$out/$name" "$tmp.old"; fi
    mv "$tmp" "$out/$name"
    rm -rf "$tmp.old"
    trap - EXIT
    echo "$stamp_key" > "$stamp"
    echo "rootfs: built $name ($(du -sh "$out/$name" | cut -f1)) in $out/$name"
done
