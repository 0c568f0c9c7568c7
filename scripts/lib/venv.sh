# Sourced by scripts/demo and scripts/test: create or reuse .venv in the checkout and install edgeprof into it.
# Usage: ensure_venv EXTRAS   (e.g. "compress" or "compress,dev")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${EDGEPROF_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    # System packages, only when missing; needs root (CI runs as root).
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing system packages: ${missing[*]} (run as root, or install them yourself)"
        return 1
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
    local extras="$1"
    "$PYTHON_BIN" - <<'PY' || { log "edgeprof needs Python >= 3.10 (set PYTHON=/path/to/python3.10+)"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        "$PYTHON_BIN" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    # Reinstall only when the dependency declaration changed since the last install.
    local stamp="$VENV/.edgeprof-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16)-$extras"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VENV/bin/python" -c "import edgeprof" 2>/dev/null; then
        log "installing edgeprof[$extras] into $VENV"
        # --resume-retries: the TensorFlow wheel is 572 MB, and a dropped connection halfway must not fail CI
        "$VENV/bin/python" -m pip install -q --resume-retries 20 -c "$ROOT/scripts/constraints.txt" -e "$ROOT[$extras]"
        echo "$want" > "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
