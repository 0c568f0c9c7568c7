# Sourced by scripts/test (needs lib/venv.sh): a throwaway PostgreSQL server for the results-store tests.
#
# Its own data directory under /tmp, a unix socket in that directory and a port on 127.0.0.1 only, trust
# authentication for those local connections, one database `edgeprof_test`. Run as the `postgres` user when we are
# root (PostgreSQL refuses to run as root). Stopped and deleted when the test run exits.
# Exports EDGEPROF_TEST_POSTGRES_URL (a SQLAlchemy URL); when the server cannot start, EDGEPROF_TEST_POSTGRES_SKIP
# says why and the PostgreSQL tests skip with that reason.
# Use it by hand:  source scripts/lib/venv.sh; source scripts/services/postgres.sh; echo $EDGEPROF_TEST_POSTGRES_URL

_edgeprof_pg_bindir() {
    find /usr/lib/postgresql -maxdepth 3 -name initdb -path '*/bin/*' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname
}

_edgeprof_pg_start() {
    local bindir dir port
    local -a as_owner=()
    bindir="$(_edgeprof_pg_bindir)"
    if [ -z "$bindir" ]; then
        apt_install postgresql || { EDGEPROF_TEST_POSTGRES_SKIP="postgresql is not installed (apt-get install postgresql)"; return 1; }
        bindir="$(_edgeprof_pg_bindir)"
    fi
    [ -n "$bindir" ] || { EDGEPROF_TEST_POSTGRES_SKIP="no initdb under /usr/lib/postgresql"; return 1; }
    dir="$(mktemp -d /tmp/edgeprof-pg.XXXXXX)"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || { EDGEPROF_TEST_POSTGRES_SKIP="no 'postgres' user to run the server as"; return 1; }
        chown postgres: "$dir"
        as_owner=(runuser -u postgres --)
    fi
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    EDGEPROF_PG_DIR="$dir"
    EDGEPROF_PG_CTL=("${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data")
    if ! "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U edgeprof --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1; then
        EDGEPROF_TEST_POSTGRES_SKIP="initdb failed: $(tail -n 1 "$dir/initdb.log")"
        return 1
    fi
    if ! "${EDGEPROF_PG_CTL[@]}" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -p $port -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
        EDGEPROF_TEST_POSTGRES_SKIP="the server did not start: $(tail -n 1 "$dir/server.log")"
        return 1
    fi
    if ! "${as_owner[@]}" "$bindir/createdb" -h "$dir" -p "$port" -U edgeprof edgeprof_test >>"$dir/server.log" 2>&1; then
        EDGEPROF_TEST_POSTGRES_SKIP="createdb failed: $(tail -n 1 "$dir/server.log")"
        return 1
    fi
    export EDGEPROF_TEST_POSTGRES_URL="postgresql+psycopg://edgeprof@/edgeprof_test?host=$dir&port=$port"
    log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port and $dir (db edgeprof_test)"
}

edgeprof_pg_stop() {
    if [ -n "${EDGEPROF_PG_DIR:-}" ] && [ -d "$EDGEPROF_PG_DIR/data" ]; then
        "${EDGEPROF_PG_CTL[@]}" stop -m fast >/dev/null 2>&1 || true
    fi
    [ -n "${EDGEPROF_PG_DIR:-}" ] && rm -rf "$EDGEPROF_PG_DIR"
    EDGEPROF_PG_DIR=""
}

# Chain onto whatever EXIT trap other service scripts set, rather than replacing it.
_edgeprof_pg_previous_trap="$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")"
trap "${_edgeprof_pg_previous_trap:+$_edgeprof_pg_previous_trap; }edgeprof_pg_stop" EXIT

if ! _edgeprof_pg_start; then
    log "PostgreSQL tests will skip: $EDGEPROF_TEST_POSTGRES_SKIP"
    export EDGEPROF_TEST_POSTGRES_SKIP
    edgeprof_pg_stop
else
    # Should a later script replace the EXIT trap, a watchdog still stops the server once this shell is gone.
    ( while kill -0 "$$" 2>/dev/null; do sleep 2; done; edgeprof_pg_stop ) </dev/null >/dev/null 2>&1 &
    disown
fi
