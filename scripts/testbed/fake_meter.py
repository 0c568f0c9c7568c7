#!/usr/bin/env python3
"""A metering smart plug on one machine: a real HTTP server that answers as a Shelly Gen2 plug, a Tasmota plug or
a generic JSON meter does, driven by a power trace the test controls.

The trace is a board's: ``idle`` watts plus ``(active - idle)`` watts for every CPU-second per second the watched
processes spend (the agent, its sibling, and whatever else runs on the board), plus Gaussian ``noise`` on each
reading, rounded to the meter's ``resolution``; ``drift`` adds watts per second to the idle level. The watched
processes are those whose command line contains ``--watch`` (a board's work directory), or, with
``--watch-netns``, every other process in this server's network namespace (a test-bed board's). Their CPU time is
read from ``/proc/PID/task/TID/schedstat`` (nanoseconds), so the trace follows the real run exactly.

Like the metering chip of a plug, the server updates its reading once per ``1/rate`` seconds with the mean power of
the period just ended; a request returns the latest reading. ``GET /_truth?start=S&end=E`` (CLOCK_MONOTONIC
seconds, the clock every process of this machine shares) returns the watched CPU-seconds in that span and the
energy above idle they cost, from a 200 Hz log, so a test knows the true energy per inference.

Endpoints, byte for byte as the vendors document them:

* Shelly Gen2 RPC over HTTP: ``GET /rpc/Switch.GetStatus?id=0`` -> the switch status object (``apower`` W,
  ``voltage``, ``current``, ``aenergy.total`` Wh, ``aenergy.by_minute`` mWh for the current and two previous
  minutes, ``aenergy.minute_ts``, ``temperature``); an unknown id gets the RPC error object with HTTP 404.
* Tasmota: ``GET /cm?cmnd=Status%208`` -> ``{"StatusSNS":{"Time":...,"ENERGY":{"TotalStartTime",...,"Total" kWh,
  "Yesterday","Today","Power" W,"ApparentPower","ReactivePower","Factor","Voltage","Current"}}}``, Power as an
  integer at the default ``WattRes 0``.
* A generic JSON meter: ``GET /api/power`` -> ``{"meter": {"power_w": ..., "energy_wh": ...}}``.

Faults (``POST /_control`` with a JSON object; also ``--mode``): ``off`` (the relay is off: 0 W, ``output``
false), ``garbage`` (an HTML page with status 200), ``schema`` (a Gen1-style body without the documented fields),
``slow`` (each answer waits ``delay_s``), ``normal``. ``drift`` may be changed the same way.

    python3 scripts/testbed/fake_meter.py --kind shelly --rate 1 --idle 3 --active 5 --noise 0.02 --watch /tmp/x
    -> prints {"port": 40123, "pid": 1234} once it listens; runs until killed.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CLOCK = time.monotonic
LOG_HZ = 200.0
VOLTS = 230.0


class Watched:
    """Cumulative CPU time of the watched processes; threads that exit keep the time they had."""

    def __init__(self, needle: str | None, netns: bool) -> None:
        self.needle = needle.encode() if needle else None
        self.netns = netns
        self.me = os.getpid()
        self.my_ns = os.readlink("/proc/self/ns/net") if netns else None
        self.pids: set[int] = set()
        self.others: set[int] = set()  # pids seen and not watched (asked again at each full scan: exec changes them)
        self.last: dict[tuple[int, int], int] = {}
        self.next_scan = 0.0

    def _scan(self, full: bool) -> None:
        # A process the agent starts (its sampler sibling) must be counted from its first moments: found a quarter
        # of a second late, its start-up CPU would land in the idle window as one step. So new pids are classified
        # at every tick (a fork inherits the command line and the namespace); the rest is re-checked less often.
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.me:
                continue
            pid = int(entry)
            if pid in self.pids or (pid in self.others and not full):
                continue
            try:
                if self.netns:
                    mine = os.readlink(f"/proc/{pid}/ns/net") == self.my_ns
                else:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        mine = self.needle is not None and self.needle in handle.read()
            except OSError:
                continue
            if mine:
                self.pids.add(pid)
                self.others.discard(pid)
            else:
                self.others.add(pid)

    def cpu_ns(self) -> int:
        now = CLOCK()
        full = now >= self.next_scan
        self._scan(full)
        if full:
            self.next_scan = now + 0.25
        for pid in list(self.pids):
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                self.pids.discard(pid)
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
                        self.last[(pid, int(tid))] = int(handle.read().split()[0])
                except (OSError, ValueError, IndexError):
                    continue
        return sum(self.last.values())


class Trace:
    """The power trace: a 200 Hz log of the watched CPU time, and the meter's periodic readings."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.watched = Watched(args.watch, args.watch_netns)
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.cpu: list[float] = []  # cumulative CPU seconds
        self.start = CLOCK()
        self.start_wall = time.time()
        self.mode = args.mode
        self.delay_s = args.delay
        self.drift = args.drift
        self.reading_w = args.idle
        self.reading_t = self.start
        self.total_wh = 0.0  # the energy counter (no noise: a chip integrates continuously)
        self.minutes: dict[int, float] = {}  # minute start (unix) -> mWh
        self.readings = 0

    def idle_w(self, t: float) -> float:
        return self.args.idle + self.drift * (t - self.start)

    def _log(self) -> None:
        period = 1.0 / LOG_HZ
        next_t = CLOCK()
        while True:
            cpu = self.watched.cpu_ns() / 1e9
            now = CLOCK()
            with self.lock:
                self.times.append(now)
                self.cpu.append(cpu)
            next_t += period
            time.sleep(max(0.0, next_t - CLOCK()))

    def cpu_at(self, t: float) -> float:
        with self.lock:
            i = bisect.bisect_left(self.times, t)
            if i <= 0:
                return self.cpu[0] if self.cpu else 0.0
            if i >= len(self.times):
                return self.cpu[-1]
            t0, t1, c0, c1 = self.times[i - 1], self.times[i], self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1

    def _meter(self) -> None:
        period = 1.0 / self.args.rate
        t_prev = CLOCK()
        cpu_prev = self.cpu_at(t_prev)
        while True:
            target = t_prev + period
            time.sleep(max(0.0, target - CLOCK()))
            t = CLOCK()
            cpu = self.cpu_at(t)
            busy = (cpu - cpu_prev) / (t - t_prev)
            mean_w = 0.5 * (self.idle_w(t_prev) + self.idle_w(t)) + (self.args.active - self.args.idle) * busy
            if self.mode == "off":
                mean_w = 0.0
            energy_wh = mean_w * (t - t_prev) / 3600.0
            value = mean_w + self.rng.gauss(0.0, self.args.noise) if self.mode != "off" else 0.0
            resolution = self.args.resolution
            value = round(value / resolution) * resolution if resolution > 0 else value
            with self.lock:
                self.reading_w = max(0.0, value)
                self.reading_t = t
                self.total_wh += energy_wh
                minute = int((self.start_wall + (t - self.start)) // 60 * 60)
                self.minutes[minute] = self.minutes.get(minute, 0.0) + energy_wh * 1000.0
                self.readings += 1
            t_prev, cpu_prev = t, cpu

    def run(self) -> None:
        for target in (self._log, self._meter):
            threading.Thread(target=target, daemon=True).start()

    def truth(self, start: float, end: float) -> dict[str, float]:
        cpu_s = self.cpu_at(end) - self.cpu_at(start)
        return {
            "cpu_s": cpu_s,
            "seconds": end - start,
            "energy_above_idle_j": (self.args.active - self.args.idle) * cpu_s,
            "idle_w": self.idle_w(0.5 * (start + end)),
        }

    # -- the vendors' bodies -----------------------------------------------------------------------------------

    def snapshot(self) -> tuple[float, float, dict[int, float]]:
        with self.lock:
            return self.reading_w, self.total_wh, dict(self.minutes)

    def shelly(self) -> bytes:
        watts, total_wh, minutes = self.snapshot()
        now = self.start_wall + (CLOCK() - self.start)
        minute_ts = int(now // 60 * 60)
        by_minute = [minutes.get(minute_ts - 60 * i, 0.0) for i in range(3)]
        output = self.mode != "off"
        current = watts / VOLTS if output else 0.0
        minutes_text = ",".join(f"{v:.3f}" for v in by_minute)
        body = (
            f'{{"id":0, "source":"init", "output":{"true" if output else "false"}, "apower":{watts:.1f}, '
            f'"voltage":{VOLTS:.1f}, "freq":50.0, "current":{current:.3f}, '
            f'"aenergy":{{"total":{total_wh:.3f},"by_minute":[{minutes_text}],"minute_ts":{minute_ts}}}, '
            '"temperature":{"tC":41.2, "tF":106.2}}'
        )
        return body.encode()

    def tasmota(self) -> bytes:
        watts, total_wh, _minutes = self.snapshot()
        now = self.start_wall + (CLOCK() - self.start)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.start_wall))
        current = watts / VOLTS
        digits = max(0, -math.floor(math.log10(self.args.resolution))) if self.args.resolution < 1 else 0
        power = f"{watts:.{digits}f}" if digits else str(round(watts))
        body = (
            f'{{"StatusSNS":{{"Time":"{stamp}","ENERGY":{{"TotalStartTime":"{started}","Total":{total_wh / 1000:.3f},'
            f'"Yesterday":0.000,"Today":{total_wh / 1000:.3f},"Power":{power},"ApparentPower":{round(watts * 1.05)},'
            f'"ReactivePower":{round(watts * 0.3)},"Factor":{0.95 if watts else 0.0:.2f},"Voltage":{round(VOLTS)},'
            f'"Current":{current:.3f}}}}}}}'
        )
        return body.encode()

    def generic(self) -> bytes:
        watts, total_wh, _minutes = self.snapshot()
        return json.dumps({"meter": {"power_w": round(watts, 4), "energy_wh": round(total_wh, 6)}}).encode()


def handler_for(trace: Trace) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ShellyHTTP/1.0" if trace.args.kind == "shelly" else "Tasmota/13.4.0"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/_truth":
                found = trace.truth(float(query["start"][0]), float(query["end"][0]))
                self._send(200, json.dumps(found).encode())
                return
            if url.path == "/_state":
                self._send(200, json.dumps({"readings": trace.readings, "mode": trace.mode}).encode())
                return
            if trace.mode == "slow":
                time.sleep(trace.delay_s)
            if trace.mode == "garbage":
                self._send(200, b"<html><body><h1>Router login</h1></body></html>", "text/html")
                return
            if url.path == "/rpc/Switch.GetStatus" and trace.args.kind == "shelly":
                switch_id = query.get("id", ["0"])[0]
                if switch_id != "0":
                    body = f'{{"code":-105,"message":"Argument \'id\', value {switch_id} not found!"}}'
                    self._send(404, body.encode())
                elif trace.mode == "schema":
                    self._send(200, b'{"relays":[{"ison":true}],"meters":[{"power":4.2,"is_valid":true}]}')
                else:
                    self._send(200, trace.shelly())
                return
            if url.path == "/cm" and trace.args.kind == "tasmota":
                command = (query.get("cmnd") or [""])[0].strip().lower()
                if command != "status 8":
                    self._send(200, b'{"Command":"Unknown"}')
                elif trace.mode == "schema":
                    self._send(200, b'{"StatusSNS":{"Time":"2026-01-01T00:00:00","Switch1":"ON"}}')
                else:
                    self._send(200, trace.tasmota())
                return
            if url.path == "/api/power" and trace.args.kind == "http-json":
                self._send(200, trace.generic() if trace.mode != "schema" else b'{"meter": {"state": "ok"}}')
                return
            self._send(404, b'{"code":404,"message":"Not Found"}')

        def do_POST(self) -> None:
            if self.path != "/_control":
                self._send(404, b"{}")
                return
            length = int(self.headers.get("Content-Length") or 0)
            change = json.loads(self.rfile.read(length) or b"{}")
            trace.mode = change.get("mode", trace.mode)
            trace.delay_s = float(change.get("delay_s", trace.delay_s))
            trace.drift = float(change.get("drift", trace.drift))
            self._send(200, json.dumps({"mode": trace.mode}).encode())

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("shelly", "tasmota", "http-json"), default="shelly")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1.0, help="readings a second (the plug's update rate)")
    parser.add_argument("--idle", type=float, default=3.0, help="watts with nothing running")
    parser.add_argument("--active", type=float, default=5.0, help="watts while one CPU is busy")
    parser.add_argument("--noise", type=float, default=0.02, help="standard deviation of a reading (W)")
    parser.add_argument("--resolution", type=float, default=0.1, help="the reading's step (W)")
    parser.add_argument("--drift", type=float, default=0.0, help="watts per second added to idle")
    parser.add_argument("--watch", default=None, help="watch processes whose command line contains this")
    parser.add_argument("--watch-netns", action="store_true", help="watch every process in this network namespace")
    parser.add_argument("--mode", default="normal", choices=("normal", "off", "garbage", "schema", "slow"))
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each answer waits in mode slow")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    trace = Trace(args)
    server = ThreadingHTTPServer((args.bind, args.port), handler_for(trace))
    server.daemon_threads = True
    trace.run()
    print(json.dumps({"port": server.server_address[1], "pid": os.getpid()}), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
