# Sourced by scripts/test (needs lib/venv.sh): a real local Ray cluster for the `edgeprof search --executor ray` test.
#
# A head node and a worker node (two raylets on this machine, one CPU each, so trials spread over both), each
# declaring one test-bed board as a custom resource the way a lab declares the boards wired to its machines
# (`edgeprof-board:ray-1` on the head, `edgeprof-board:ray-2` on the worker; the test names its boards so). Both run
# `ray start --block` in their own session: stopping one is killing its process group, never `ray stop` (which stops
# every Ray process of the machine, other people's too). Stopped and deleted when the test run exits.
# Exports EDGEPROF_TEST_RAY_ADDRESS (host:port of the head), and RAY_AUTH_MODE=token with RAY_AUTH_TOKEN_PATH (the
# cluster's token, in its temp dir); when the cluster cannot start, EDGEPROF_TEST_RAY_SKIP says why and the Ray test
# skips with that reason.
# Use it by hand:  source scripts/lib/venv.sh; source scripts/services/ray.sh; echo $EDGEPROF_TEST_RAY_ADDRESS

_edgeprof_ray_wait_nodes() {
    # Until the cluster at $1 has $2 live nodes, while `ray start` (PID $3) runs, at most 120 s: as a client, as the
    # test connects.
    "$VENV/bin/python" - "$1" "$2" "$3" <<'PY' >/dev/null 2>&1
import os, sys, time
deadline = time.monotonic() + 120
def alive():
    try:
        os.kill(int(sys.argv[3]), 0)
        return True
    except OSError:
        return False
import ray
while True:  # the head's GCS answers a few seconds after `ray start` begins
    try:
        ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
        break
    except Exception:
        if not alive() or time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(1)
while sum(1 for n in ray.nodes() if n["Alive"]) < int(sys.argv[2]):
    if not alive() or time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.5)
PY
}

_edgeprof_ray_start() {
    local ray="$VENV/bin/ray" dir port
    [ -x "$ray" ] || { EDGEPROF_TEST_RAY_SKIP="ray is not installed in $VENV (pip install 'edgeprof[ray]')"; return 1; }
    # Ray's unix sockets live under its temp dir: keep the path short (a socket path is at most 107 bytes).
    dir="$(mktemp -d /tmp/epray.XXXXXX)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    EDGEPROF_RAY_DIR="$dir"
    # Token authentication with a token of this cluster's own, as a lab cluster should run: Ray 2.60 turns token
    # auth on by itself whenever ~/.ray/auth_token exists (a local `ray.init()` writes one), and a head that did so
    # refuses clients that did not. Explicit mode and path make the nodes, the tests and their Ray workers agree.
    ( umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > "$dir/auth_token" )
    export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$dir/auth_token"
    local common=(--block --node-ip-address=127.0.0.1 --num-cpus=1 --disable-usage-stats)
    RAY_USAGE_STATS_ENABLED=0 setsid "$ray" start --head --port="$port" --temp-dir="$dir" --include-dashboard=false \
        "${common[@]}" \
        --resources='{"edgeprof-board:ray-1": 1}' </dev/null >"$dir/head.log" 2>&1 &
    disown
    EDGEPROF_RAY_PIDS=("$!")
    if ! _edgeprof_ray_wait_nodes "127.0.0.1:$port" 1 "${EDGEPROF_RAY_PIDS[0]}"; then
        EDGEPROF_TEST_RAY_SKIP="the Ray head did not start: $(tail -n 1 "$dir/head.log")"
        return 1
    fi
    RAY_USAGE_STATS_ENABLED=0 setsid "$ray" start --address="127.0.0.1:$port" "${common[@]}" \
        --resources='{"edgeprof-board:ray-2": 1}' </dev/null >"$dir/worker.log" 2>&1 &
    disown
    EDGEPROF_RAY_PIDS+=("$!")
    if ! _edgeprof_ray_wait_nodes "127.0.0.1:$port" 2 "${EDGEPROF_RAY_PIDS[1]}"; then
        EDGEPROF_TEST_RAY_SKIP="the Ray worker node did not join: $(tail -n 1 "$dir/worker.log")"
        return 1
    fi
    export EDGEPROF_TEST_RAY_ADDRESS="127.0.0.1:$port"
    log "Ray $("$VENV/bin/python" -c 'import ray; print(ray.__version__)') cluster: head and worker at $EDGEPROF_TEST_RAY_ADDRESS ($dir)"
}

edgeprof_ray_stop() {
    # Each node is a process group of its own (setsid): TERM it, then KILL what is left (gcs_server ignores TERM
    # for a while).
    local pid
    for pid in "${EDGEPROF_RAY_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for pid in "${EDGEPROF_RAY_PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.5
    done
    for pid in "${EDGEPROF_RAY_PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    EDGEPROF_RAY_PIDS=()
    [ -n "${EDGEPROF_RAY_DIR:-}" ] && rm -rf "$EDGEPROF_RAY_DIR"
    EDGEPROF_RAY_DIR=""
}

EDGEPROF_RAY_PIDS=()
_edgeprof_ray_previous_trap="$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")"
trap "${_edgeprof_ray_previous_trap:+$_edgeprof_ray_previous_trap; }edgeprof_ray_stop" EXIT

if ! _edgeprof_ray_start; then
    log "the Ray test will skip: $EDGEPROF_TEST_RAY_SKIP"
    export EDGEPROF_TEST_RAY_SKIP
    edgeprof_ray_stop
else
    # Should a later script replace the EXIT trap, a watchdog still stops the cluster once this shell is gone.
    _edgeprof_ray_shell=$$
    ( while kill -0 "$_edgeprof_ray_shell" 2>/dev/null; do sleep 2; done; edgeprof_ray_stop ) </dev/null >/dev/null 2>&1 &
    disown
fi
