#!/usr/bin/env bash
# An old board on this machine: Debian bullseye (Python 3.9.2, glibc 2.31, as Raspberry Pi OS bullseye), x86_64,
# no emulation, with two agent environments of the kind such boards carry:
#   /opt/litert   ai-edge-litert 2.1.0 (the last release with cp39 wheels) + numpy 1.26
#   /opt/tflite   tflite-runtime 2.14.0 (the last tflite-runtime) + numpy 1.26
# Built once (≈ 35 s debootstrap + ≈ 1 min pip) and cached outside the checkout; later runs only print the path.
#
# Usage: scripts/testbed/agent-bullseye.sh    prints the root file system's path on stdout, logs on stderr
# Needs root (debootstrap, chroot) and the Debian mirror + PyPI; exits 1 with a reason otherwise.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/venv.sh
source "$HERE/../lib/venv.sh"
# shellcheck source=../lib/rootfs.sh
source "$HERE/../lib/rootfs.sh"

CACHE="${EDGEPROF_TESTBED_CACHE:-/var/cache/edgeprof-testbed}"
DEST="$CACHE/agent-bullseye-amd64"
READY="$DEST/.edgeprof-agent-venvs-ready"
# Bump when the environments below change, so cached test beds are rebuilt.
RECIPE="1 ai-edge-litert==2.1.0 tflite-runtime==2.14.0 numpy==1.26.4"

if [ -f "$READY" ] && [ "$(cat "$READY")" = "$RECIPE" ]; then
    echo "$DEST"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    log "the bullseye test bed needs root (debootstrap, chroot)"
    exit 1
fi
mkdir -p "$CACHE"
build_rootfs amd64 bullseye "$DEST" python3,python3-venv,python3-pip,ca-certificates

# pip inside the chroot: a private mount namespace gives it /proc and /dev without leaving mounts behind.
in_root() {
    unshare --mount --propagation private -- sh -c '
        root="$1"; shift
        mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
            exec chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"
    ' in_root "$DEST" "$@"
}
make_venv() {
    local venv="$1"; shift
    rm -rf "${DEST:?}$venv"
    log "bullseye: $venv <- $*"
    in_root /usr/bin/python3 -m venv "$venv"
    in_root "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir "$@"
}
make_venv /opt/litert ai-edge-litert==2.1.0 numpy==1.26.4
make_venv /opt/tflite tflite-runtime==2.14.0 numpy==1.26.4
echo "$RECIPE" > "$READY"
echo "$DEST"
