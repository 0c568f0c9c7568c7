# Sourced by test-bed scripts: build a Debian root file system once and cache it.
#
#   build_rootfs ARCH SUITE DEST PACKAGES
#     ARCH      amd64 | arm64 (arm64 runs under qemu-user on x86_64 hosts)
#     SUITE     bookworm | bullseye | ...
#     DEST      target folder; a finished build leaves DEST/.edgeprof-rootfs-ready and is reused
#     PACKAGES  comma-separated extra packages (e.g. python3,python3-venv,openssh-server)
#
# Needs root (debootstrap, binfmt). The host's Debian mirror is used, and the host's extra CA certificates are
# copied in, because HTTPS here passes a TLS-inspecting proxy (pip inside the root file system needs them).
set -euo pipefail

_rootfs_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

debian_mirror() {
    local uri
    uri=$(grep -h -m1 -E '^URIs:.*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true)
    [ -n "$uri" ] || uri=$(grep -h -m1 -E '^deb .*debian/? ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

enable_foreign_arch() {
    local arch="$1"
    [ "$arch" = "$(dpkg --print-architecture)" ] && return 0
    local qemu="qemu-aarch64"
    [ "$arch" = "armhf" ] && qemu="qemu-arm"
    if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    update-binfmts --enable "$qemu" >/dev/null 2>&1 || true
    [ -e "/proc/sys/fs/binfmt_misc/$qemu" ] || { _rootfs_log "binfmt for $qemu is not available"; return 1; }
}

build_rootfs() {
    local arch="$1" suite="$2" dest="$3" packages="${4:-}"
    if [ -f "$dest/.edgeprof-rootfs-ready" ]; then
        enable_foreign_arch "$arch"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        _rootfs_log "building a root file system needs root"
        return 1
    fi
    local tools=(debootstrap)
    [ "$arch" = "$(dpkg --print-architecture)" ] || tools+=(qemu-user-static binfmt-support)
    apt_install "${tools[@]}"
    enable_foreign_arch "$arch"
    rm -rf "$dest"
    mkdir -p "$dest"
    _rootfs_log "debootstrap $suite/$arch into $dest (a few minutes, once)"
    debootstrap --arch="$arch" --variant=minbase ${packages:+--include="$packages"} \
        "$suite" "$dest" "$(debian_mirror)" >"$dest.debootstrap.log" 2>&1 || {
        tail -20 "$dest.debootstrap.log" >&2
        return 1
    }
    if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        mkdir -p "$dest/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$dest/usr/local/share/ca-certificates/"
        chroot "$dest" update-ca-certificates >/dev/null 2>&1 || true
    fi
    cp /etc/resolv.conf "$dest/etc/resolv.conf" 2>/dev/null || true
    touch "$dest/.edgeprof-rootfs-ready"
}
