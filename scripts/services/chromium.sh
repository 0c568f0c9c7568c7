# Sourced by scripts/test (needs lib/venv.sh): a real headless Chromium and its WebDriver for the report test.
#
# Debian's `chromium` and `chromium-driver` packages (installed with apt when missing, as root). Exports
# EDGEPROF_TEST_CHROMIUM and EDGEPROF_TEST_CHROMEDRIVER; when they cannot be had, EDGEPROF_TEST_CHROMIUM_SKIP says
# why and the browser test skips with that reason. Nothing runs in the background: each test starts its own browser.

_edgeprof_chromium() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        apt_install chromium chromium-driver || {
            EDGEPROF_TEST_CHROMIUM_SKIP="chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
            return 1
        }
    fi
    EDGEPROF_TEST_CHROMIUM="$(command -v chromium)"
    EDGEPROF_TEST_CHROMEDRIVER="$(command -v chromedriver)"
    export EDGEPROF_TEST_CHROMIUM EDGEPROF_TEST_CHROMEDRIVER
    log "$("$EDGEPROF_TEST_CHROMIUM" --version 2>/dev/null | head -n 1)"
}

if ! _edgeprof_chromium; then
    log "the browser test will skip: $EDGEPROF_TEST_CHROMIUM_SKIP"
    export EDGEPROF_TEST_CHROMIUM_SKIP
fi
