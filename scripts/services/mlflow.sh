# Sourced by scripts/test (needs lib/venv.sh and the dev extra, which installs mlflow): a throwaway MLflow tracking
# server for the --mlflow tests.
#
# `mlflow server` with a SQLite backend store and a local artifact store, both in a folder under /tmp, bound to
# 127.0.0.1 on a free port, one worker. Stopped and deleted when the test run exits.
# Exports EDGEPROF_TEST_MLFLOW_URI (http://127.0.0.1:PORT); when the server cannot start, EDGEPROF_TEST_MLFLOW_SKIP
# says why and the MLflow tests skip with that reason.
# Use it by hand:  source scripts/lib/venv.sh; source scripts/services/mlflow.sh; echo $EDGEPROF_TEST_MLFLOW_URI

_edgeprof_mlflow_start() {
    local dir port mlflow_bin
    mlflow_bin="$(command -v mlflow || true)"
    [ -n "$mlflow_bin" ] || { EDGEPROF_TEST_MLFLOW_SKIP="mlflow is not installed (pip install -e '.[dev]')"; return 1; }
    dir="$(mktemp -d /tmp/edgeprof-mlflow.XXXXXX)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    EDGEPROF_MLFLOW_DIR="$dir"
    "$mlflow_bin" server --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$dir/artifacts" \
        --host 127.0.0.1 --port "$port" --workers 1 >"$dir/server.log" 2>&1 </dev/null &
    EDGEPROF_MLFLOW_PID=$!
    # The first start creates the SQLite schema (alembic migrations): on 2 busy cores that takes up to a minute.
    for _ in $(seq 1 360); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null; then
            export EDGEPROF_TEST_MLFLOW_URI="http://127.0.0.1:$port"
            log "MLflow $("$mlflow_bin" --version | awk '{print $3}') on $EDGEPROF_TEST_MLFLOW_URI ($dir)"
            return 0
        fi
        kill -0 "$EDGEPROF_MLFLOW_PID" 2>/dev/null || break
        sleep 0.5
    done
    EDGEPROF_TEST_MLFLOW_SKIP="mlflow server did not start: $(tail -n 1 "$dir/server.log")"
    return 1
}

edgeprof_mlflow_stop() {
    if [ -n "${EDGEPROF_MLFLOW_PID:-}" ]; then
        # The server runs its workers in child processes: stop the whole group of this one process.
        pkill -TERM -P "$EDGEPROF_MLFLOW_PID" 2>/dev/null || true
        kill "$EDGEPROF_MLFLOW_PID" 2>/dev/null || true
        wait "$EDGEPROF_MLFLOW_PID" 2>/dev/null || true
    fi
    [ -n "${EDGEPROF_MLFLOW_DIR:-}" ] && rm -rf "$EDGEPROF_MLFLOW_DIR"
    EDGEPROF_MLFLOW_PID=""
    EDGEPROF_MLFLOW_DIR=""
}

# Chain onto whatever EXIT trap other service scripts set, rather than replacing it.
_edgeprof_mlflow_previous_trap="$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")"
trap "${_edgeprof_mlflow_previous_trap:+$_edgeprof_mlflow_previous_trap; }edgeprof_mlflow_stop" EXIT

if ! _edgeprof_mlflow_start; then
    log "MLflow tests will skip: $EDGEPROF_TEST_MLFLOW_SKIP"
    export EDGEPROF_TEST_MLFLOW_SKIP
    edgeprof_mlflow_stop
else
    # Should a later script replace the EXIT trap, a watchdog still stops the server once this shell is gone.
    ( server="$EDGEPROF_MLFLOW_PID"; dir="$EDGEPROF_MLFLOW_DIR"
      while kill -0 "$$" 2>/dev/null; do sleep 2; done
      pkill -TERM -P "$server" 2>/dev/null; kill "$server" 2>/dev/null; rm -rf "$dir" ) </dev/null >/dev/null 2>&1 &
    disown
fi
