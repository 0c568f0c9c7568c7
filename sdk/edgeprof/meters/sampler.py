"""Reading a meter on the host, in a thread, at the meter's own rate, each reading stamped on the host's clock.

A plug updates its reading once per period (1 s for Shelly and Tasmota plugs) with what its metering chip measured
over that period, and a request returns the latest update. So a reading received at ``t`` describes some period
within ``[sent - 2 / rate, received]``: the estimator (estimate.py) uses only readings whose whole span lies inside
a window. Reading faster than the meter updates would only repeat values; reading at its rate loses nothing.
Failed reads are counted with the last error, never raised: the profile goes on and the result says what happened.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ..errors import MeterError
from .base import Driver, Reading
from .clock import HOST_CLOCK

log = logging.getLogger("edgeprof.meters")


@dataclass
class Log:
    """Every reading of one run: when the request was sent and answered (host clock), and what it said."""

    sent: list[float] = field(default_factory=list)
    received: list[float] = field(default_factory=list)
    watts: list[float] = field(default_factory=list)
    counter_wh: list[float | None] = field(default_factory=list)
    relay_on: list[bool | None] = field(default_factory=list)
    errors: int = 0
    last_error: MeterError | None = None
    first_error: MeterError | None = None
    last_extra: dict = field(default_factory=dict)

    def add(self, sent: float, received: float, reading: Reading) -> None:
        self.sent.append(sent)
        self.received.append(received)
        self.watts.append(reading.watts)
        self.counter_wh.append(reading.counter_wh)
        self.relay_on.append(reading.relay_on)
        if reading.extra:
            self.last_extra = reading.extra

    def fail(self, error: MeterError) -> None:
        self.errors += 1
        self.last_error = error
        if self.first_error is None:
            self.first_error = error


class Sampler:
    """Reads ``driver`` every ``1 / rate_hz`` seconds until stopped (never in bursts when the meter is slow)."""

    def __init__(self, driver: Driver, rate_hz: float) -> None:
        self.driver = driver
        self.period = 1.0 / rate_hz
        self.log = Log()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read_once(self) -> None:
        sent = HOST_CLOCK()
        try:
            reading = self.driver.read()
        except MeterError as exc:
            with self._lock:
                self.log.fail(exc)
            log.debug("meter: %s", exc)
            return
        received = HOST_CLOCK()
        with self._lock:
            self.log.add(sent, received, reading)

    def _run(self) -> None:
        deadline = HOST_CLOCK()
        while not self._stop.is_set():
            self.read_once()
            deadline += self.period
            delay = deadline - HOST_CLOCK()
            if delay < 0:  # the meter answers slower than its rate: read again at once, and keep the pace from now
                deadline = HOST_CLOCK()
                delay = 0.0
            self._stop.wait(delay)

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="edgeprof-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Log:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.driver.config.timeout_s + 5.0)
        self.driver.close()
        return self.snapshot()

    def snapshot(self) -> Log:
        """A copy of the readings so far (the thread keeps adding to its own)."""
        with self._lock:
            copy = Log(
                list(self.log.sent),
                list(self.log.received),
                list(self.log.watts),
                list(self.log.counter_wh),
                list(self.log.relay_on),
                self.log.errors,
                self.log.last_error,
                self.log.first_error,
                dict(self.log.last_extra),
            )
        return copy
