# Sourced by scripts/test: a bare venv with edgeprof's light install only (no TensorFlow), built once and cached, for
# the test that a user without `edgeprof[compress]` gets a clear line instead of a crash.
# Exports EDGEPROF_TEST_LIGHT_PYTHON; when the venv cannot be built, EDGEPROF_TEST_LIGHT_PYTHON_SKIP says why.
_edgeprof_light_cache="${EDGEPROF_TEST_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeprof-test-venvs}"
if EDGEPROF_TEST_LIGHT_PYTHON="$(python "$ROOT/scripts/testbed/light_venv.py" "$_edgeprof_light_cache" 2>/tmp/edgeprof-light-venv.log)"; then
    export EDGEPROF_TEST_LIGHT_PYTHON
    log "light install: $EDGEPROF_TEST_LIGHT_PYTHON"
else
    export EDGEPROF_TEST_LIGHT_PYTHON_SKIP="could not build the light venv: $(tail -n 1 /tmp/edgeprof-light-venv.log)"
    log "the light-install test will skip: $EDGEPROF_TEST_LIGHT_PYTHON_SKIP"
fi
