"""A metering plug for the tests: scripts/testbed/fake_meter.py in its own process (on loopback, or inside a
test-bed board's network namespace), with its power trace driven by the watched processes' real CPU time."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "testbed" / "fake_meter.py"


class FakeMeter:
    def __init__(
        self,
        kind: str = "shelly",
        *,
        rate: float = 10.0,
        idle: float = 3.0,
        active: float = 5.0,
        noise: float = 0.02,
        resolution: float = 0.1,
        watch: str | None = None,
        netns: str | None = None,
        bind: str = "127.0.0.1",
        mode: str = "normal",
        delay: float = 0.0,
        drift: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.idle, self.active = idle, active
        argv = [sys.executable, str(SCRIPT), "--kind", kind, "--bind", bind, "--rate", str(rate), "--idle", str(idle)]
        argv += ["--active", str(active), "--noise", str(noise), "--resolution", str(resolution), "--mode", mode]
        argv += ["--delay", str(delay), "--drift", str(drift), "--seed", str(seed)]
        # Nothing watched by default (a constant trace): another test's agents must never move this meter.
        argv += ["--watch-netns"] if netns else ["--watch", watch or f"nothing-to-watch-{id(self)}"]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            why = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"the fake meter did not start: {why}")
        self.port = int(json.loads(line)["port"])
        self.bind = bind
        self.address = f"{bind}:{self.port}"
        self.url = f"http://{self.address}"

    def control(self, **change: Any) -> None:
        request = urllib.request.Request(
            f"{self.url}/_control", data=json.dumps(change).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def truth(self, start: float, end: float) -> dict[str, float]:
        with urllib.request.urlopen(f"{self.url}/_truth?start={start}&end={end}", timeout=5) as response:
            return json.loads(response.read())

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
            return response.read()

    def wait_readings(self, count: int = 2, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if json.loads(self.get("/_state"))["readings"] >= count:
                return
            time.sleep(0.05)

    def energy_per_inference_mj(self, measurement: dict[str, Any]) -> float:
        """The true energy above the board's resting draw per inference of a profile's measured loop (board clock =
        this clock). The resting draw is the median CPU share over the quarters of the idle windows (before the loop
        and, when there is one, after it): a one-off burst in an idle window (a process or thread starting; up to
        44 ms of CPU seen in bench-meters) is neither the board at rest nor the model's work, and a window's mean
        would extrapolate it over the whole loop (a 20 s loop at 10 % duty: the truth 45 % low)."""
        windows = measurement["windows"]
        run = self.truth(*windows["measure"])
        rest = statistics.median(rate for rates in self.resting_rates(windows).values() for rate in rates)
        above_j = (self.active - self.idle) * (run["cpu_s"] - rest * run["seconds"])
        return above_j * 1000.0 / measurement["latency_ms"]["count"]

    def resting_rates(self, windows: dict[str, Any]) -> dict[str, list[float]]:
        """The watched processes' CPU share in each quarter of the idle windows (before and after the loop)."""
        found = {}
        for name in ("idle", "idle_after"):
            if windows.get(name):
                start, end = windows[name]
                quarters = [self.truth(start + (end - start) * i / 4, start + (end - start) * (i + 1) / 4)
                            for i in range(4)]  # fmt: skip
                found[name] = [q["cpu_s"] / q["seconds"] for q in quarters]
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> FakeMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def meter_config(path: Path, meter: FakeMeter, *, name: str = "bench", workdir: Path, **settings: Any) -> Path:
    """An edgeprof.toml with a local-transport target whose work directory the meter watches."""
    table = {"kind": meter.kind, **settings}
    if meter.kind == "http-json":
        table.setdefault("url", f"{meter.url}/api/power")
        table.setdefault("field", "meter.power_w")
    else:
        table.setdefault("address", meter.address)
    lines = [f"[targets.{name}]", 'transport = "local"', f'python = "{sys.executable}"', f'workdir = "{workdir}"', ""]
    lines.append(f"[targets.{name}.meter]")
    for key, value in table.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path
