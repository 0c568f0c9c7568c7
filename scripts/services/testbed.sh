# Sourced by scripts/test: the board test bed (scripts/testbed/) for the SSH, fleet and fault tests.
#   - OpenSSH (server and client), iproute2 (namespaces, veth, tc), iptables + libnetfilter-queue1 (user-space delay
#     and loss, since this kernel has no netem);
#   - the emulated arm64 board's root file system, built once (≈ 5 min) and cached in /var/cache/edgeprof-testbed;
#   - wheels of numpy + ai-edge-litert for this machine's Python, cached there too, for 'targets setup --wheels'.
# Exports EDGEPROF_TESTBED_ARM64 and EDGEPROF_TESTBED_WHEELS when they are ready; the tests that need them skip with
# the reason otherwise. The boards themselves are started by the tests' fixtures (tests/testbed.py).

_testbed_cache="${EDGEPROF_TESTBED_CACHE:-/var/cache/edgeprof-testbed}"

_testbed_setup() {
    apt_install adb || true  # the adb transport's client-side tests (no Android device here)
    if ! apt_install openssh-server openssh-client iproute2 iptables libnetfilter-queue1; then
        log "test bed: system packages missing; SSH tests will skip"
        return 0
    fi
    mkdir -p /run/sshd 2>/dev/null || true
    if [ "$(id -u)" -ne 0 ]; then
        log "test bed: not root, so boards are sshd on loopback ports and the namespace tests skip"
        return 0
    fi
    local arm64
    if arm64="$("$ROOT/scripts/testbed/arm64-board.sh")"; then
        export EDGEPROF_TESTBED_ARM64="$arm64"
    else
        log "test bed: the emulated arm64 board could not be built; its test will skip"
    fi
    # Wheels for the boards' Python: the namespace boards run the host's /usr/bin/python3 (no python setting).
    local board_python=/usr/bin/python3 tag machine
    tag="$("$board_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
    machine="$(uname -m)"
    local wheels="$_testbed_cache/wheels-cp${tag/./}-$machine"
    if [ -n "$tag" ] && [ ! -f "$wheels/.ready" ]; then
        log "test bed: downloading numpy + ai-edge-litert wheels for Python $tag into $wheels (once)"
        rm -rf "$wheels" && mkdir -p "$wheels"
        local platforms=()
        for p in manylinux2014 manylinux_2_17 manylinux_2_27 manylinux_2_28; do platforms+=(--platform "${p}_$machine"); done
        if "$VENV/bin/python" -m pip download -q --disable-pip-version-check --only-binary=:all: \
            --python-version "$tag" "${platforms[@]}" -d "$wheels" numpy ai-edge-litert; then
            touch "$wheels/.ready"
        fi
    fi
    [ -f "$wheels/.ready" ] && export EDGEPROF_TESTBED_WHEELS="$wheels"
    return 0
}
_testbed_setup || log "test bed: setup failed; the tests that need it skip with the reason"
