"""The agent's side of a host-side meter, under every interpreter (Python 3.11, and Python 3.9 on bullseye with
ai-edge-litert and tflite-runtime): its clock, its windows on CLOCK_MONOTONIC, a duty cycle, and open-ended phases
that end when the host signals ``stop`` (read with a non-blocking select between runs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

QUICK = {
    "runs": 5,
    "warmup_runs": 1,
    "warmup_seconds": 0.0,
    "min_seconds": 0.2,
    "idle_seconds": 0.3,
    "energy": "off",
    "threads": 1,
}


def _run_with_signals(agent, args: dict, stop_after: dict[str, float]) -> tuple[dict, list[dict], dict[str, float]]:
    """Send a profile request; signal ``stop`` for a phase once its progress passes ``stop_after[phase]`` seconds.
    Returns the answer, the events, and when (host clock) each stop was sent."""
    agent._ids += 1
    request_id = agent._ids
    agent.process.stdin.write(json.dumps({"id": request_id, "op": "profile", "args": args}) + "\n")
    agent.process.stdin.flush()
    sent: dict[str, float] = {}
    events = []
    while True:
        message = json.loads(agent._lines.get(timeout=120))
        if "event" not in message:
            return message, events, sent
        events.append(message)
        phase = message.get("phase")
        due = message["event"] == "progress" and phase in stop_after and phase not in sent
        if due and message["seconds"] >= stop_after[phase]:
            agent.process.stdin.write(json.dumps({"id": request_id, "signal": "stop", "phase": phase}) + "\n")
            agent.process.stdin.flush()
            sent[phase] = time.monotonic()


def test_held_phases_end_when_the_host_signals_and_windows_are_on_the_board_clock(agent, models: Path) -> None:
    model = agent.interpreter.place(models / "float.tflite")
    before = agent.ok("clock")["monotonic"]
    args = {"model": model, **QUICK, "meter": True, "hold": True, "idle_after_seconds": 30.0, "max_seconds": 30.0}
    answer, events, sent = _run_with_signals(agent, args, {"measure": 1.0, "idle_after": 0.5})
    assert answer["ok"], answer
    assert set(sent) == {"measure", "idle_after"}
    result = answer["result"]
    windows = result["windows"]
    assert windows["clock"] == "CLOCK_MONOTONIC"
    edges = [edge for name in ("idle", "warmup", "measure", "idle_after") for edge in windows[name]]
    assert edges == sorted(edges) and before < edges[0]  # one clock, in order, after the clock we were told
    # Held well past min_seconds (0.2 s) until the signal, and ended soon after it: at its next tick (0.5 s).
    measured = windows["measure"][1] - windows["measure"][0]
    assert 1.0 <= measured < 10.0 and abs(result["measured_seconds"] - measured) < 0.01
    assert 0.5 <= windows["idle_after"][1] - windows["idle_after"][0] < 10.0
    assert [e["phase"] for e in events if e["event"] == "phase"] == ["idle", "load", "warmup", "measure", "idle_after"]
    assert agent.ok("clock")["monotonic"] > windows["idle_after"][1]
    # A late signal for a request that has answered is dropped, not taken for a request.
    agent.process.stdin.write(json.dumps({"id": 1, "signal": "stop", "phase": "measure"}) + "\n")
    agent.process.stdin.flush()
    assert agent.ok("hello")["agent_version"]


def test_without_a_signal_a_held_loop_stops_at_max_seconds(agent, models: Path) -> None:
    model = agent.interpreter.place(models / "float.tflite")
    args = {"model": model, **QUICK, "meter": True, "hold": True, "max_seconds": 1.5, "idle_after_seconds": 0.6}
    result = agent.ok("profile", args)
    assert 1.5 <= result["measured_seconds"] < 2.5
    assert 0.6 <= result["windows"]["idle_after"][1] - result["windows"]["idle_after"][0] < 2.0


def test_duty_cycle_pauses_in_proportion_to_each_run(start_agent, real_models: Path) -> None:
    agent = start_agent()
    model = real_models / "fingerprint_signature_generator" / "fingerprint_signature_generator.tflite"  # ~0.5 ms
    args = {"model": str(model), **QUICK, "runs": 40, "min_seconds": 0.5, "duty_cycle": 0.25}
    result = agent.ok("profile", args)
    duty = result["duty"]
    assert duty["requested"] == 0.25 and 0.15 < duty["achieved"] < 0.3, duty
    assert result["options"]["duty_cycle"] == 0.25
    error = agent.error("profile", {**args, "pause_ms": 10})
    assert error["code"] == "bad_request" and "not both" in error["message"]
    error = agent.error("profile", {**args, "duty_cycle": 1.5})
    assert "duty_cycle must be in (0, 1]" in error["message"]
