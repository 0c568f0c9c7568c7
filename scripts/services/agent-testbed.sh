# Sourced by scripts/test: build (once; cached under /var/cache/edgeprof-testbed) the old-board test bed on which
# the agent's protocol tests also run: Debian bullseye, Python 3.9.2, ai-edge-litert 2.1.0 / tflite-runtime 2.14.0.
# Without root, or without the Debian mirror / PyPI, the build fails and those tests skip with the reason.
if EDGEPROF_AGENT_TESTBED="$(bash "$ROOT/scripts/testbed/agent-bullseye.sh")"; then
    export EDGEPROF_AGENT_TESTBED
else
    log "agent test bed unavailable: the bullseye agent tests will skip"
fi
