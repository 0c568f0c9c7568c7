#!/usr/bin/env bash
# The emulated arm64 board's root file system: Debian bookworm arm64 under qemu-user, with OpenSSH and a Python venv
# that holds numpy + ai-edge-litert (/opt/edgeprof-venv), so the edgeprof agent runs in it as on a Raspberry Pi 4/5.
# Built once (≈ 4 min debootstrap + ≈ 1 min pip under emulation) and cached outside the checkout; later runs only
# print the path. scripts/testbed/testbed.py boots it as a board (sshd from the chroot inside a network namespace).
#
# Usage: scripts/testbed/arm64-board.sh    prints the root file system's path on stdout, logs on stderr
# Needs root (debootstrap, binfmt, chroot) and the Debian mirror + PyPI; exits 1 with a reason otherwise.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/venv.sh
source "$HERE/../lib/venv.sh"
# shellcheck source=../lib/rootfs.sh
source "$HERE/../lib/rootfs.sh"

CACHE="${EDGEPROF_TESTBED_CACHE:-/var/cache/edgeprof-testbed}"
DEST="$CACHE/arm64-bookworm"
READY="$DEST/.edgeprof-board-ready"
# Bump when the environment below changes, so cached boards are rebuilt.
RECIPE="1 numpy==2.4.6 ai-edge-litert==2.3.0"

if [ -f "$READY" ] && [ "$(cat "$READY")" = "$RECIPE" ]; then
    enable_foreign_arch arm64
    echo "$DEST"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    log "the emulated arm64 board needs root (debootstrap, binfmt, chroot)"
    exit 1
fi
mkdir -p "$CACHE"
build_rootfs arm64 bookworm "$DEST" python3,python3-venv,python3-pip,openssh-server,iproute2,ca-certificates

# Never mount /sys here: LiteRT's CPU detection segfaults under qemu when it can read /sys (FIELD-NOTES).
in_root() {
    unshare --mount --propagation private -- sh -c '
        root="$1"; shift
        mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" && exec chroot "$root" "$@"
    ' in_root "$DEST" "$@"
}
log "arm64 board: /opt/edgeprof-venv <- ${RECIPE#* } (under emulation, about a minute)"
rm -rf "$DEST/opt/edgeprof-venv"
in_root /usr/bin/python3 -m venv /opt/edgeprof-venv
# shellcheck disable=SC2086
in_root /opt/edgeprof-venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir ${RECIPE#* }
in_root /opt/edgeprof-venv/bin/python -c "import numpy, ai_edge_litert.interpreter" >&2
mkdir -p "$DEST/run/sshd"
echo "$RECIPE" > "$READY"
echo "$DEST"
