"""The board's monotonic clock on the host's: offset, drift and an error bound, measured over the agent's channel.

The agent reports its windows (idle, warm-up, measured loop, idle after) on the board's CLOCK_MONOTONIC; a meter's
readings are stamped with the host's. Before and after the run the host asks the agent for its clock several times
(``clock``), stamping each request when sent and each answer when received, as NTP does: the board's reading was
taken somewhere within that round trip, so ``offset = board - (sent + received) / 2`` is off by at most half the
round trip. The exchange with the shortest round trip at each end is kept; the two ends give the offset's drift
over the run (crystal clocks differ by tens of ppm), and the error bound is half the longer of the two round trips.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

HOST_CLOCK = time.monotonic
EXCHANGES = 8
MAX_DRIFT_PPM = 1000.0  # beyond this the two ends disagree for another reason (a board that slept): no drift used


@dataclass(frozen=True)
class Exchange:
    sent: float  # host clock
    received: float  # host clock
    board: float  # board clock, read by the agent in between

    @property
    def rtt_s(self) -> float:
        return self.received - self.sent

    @property
    def offset_s(self) -> float:
        return self.board - 0.5 * (self.sent + self.received)

    @property
    def at(self) -> float:
        return 0.5 * (self.sent + self.received)


def exchange(ask: Callable[[], float], count: int = EXCHANGES) -> Exchange:
    """The best of ``count`` clock exchanges (shortest round trip); ``ask()`` returns the board's clock."""
    best: Exchange | None = None
    for _ in range(count):
        sent = HOST_CLOCK()
        board = ask()
        received = HOST_CLOCK()
        found = Exchange(sent, received, board)
        if best is None or found.rtt_s < best.rtt_s:
            best = found
    assert best is not None
    return best


@dataclass(frozen=True)
class ClockMap:
    """``host = board - offset(board)``, with ``offset`` linear between the two exchanges."""

    offset_s: float  # at the first exchange
    drift_ppm: float
    error_s: float  # bound on any mapped time
    rtt_s: float  # the shortest round trip seen
    at_host_s: float  # host time of the first exchange
    exchanges: int

    @classmethod
    def fit(cls, before: Exchange, after: Exchange | None = None) -> ClockMap:
        if after is None or after.at - before.at < 1.0:
            return cls(before.offset_s, 0.0, 0.5 * before.rtt_s, before.rtt_s, before.at, 1)
        slope = (after.offset_s - before.offset_s) / (after.at - before.at)
        error = 0.5 * max(before.rtt_s, after.rtt_s)
        if abs(slope) * 1e6 > MAX_DRIFT_PPM:
            # Not a crystal's drift: use the mean offset and widen the bound to cover both ends.
            mean = 0.5 * (before.offset_s + after.offset_s)
            spread = 0.5 * abs(after.offset_s - before.offset_s)
            return cls(mean, 0.0, error + spread, min(before.rtt_s, after.rtt_s), before.at, 2)
        return cls(before.offset_s, slope * 1e6, error, min(before.rtt_s, after.rtt_s), before.at, 2)

    def to_host(self, board_s: float) -> float:
        # offset(host) = offset_s + drift * (host - at); board = host + offset(host)  =>  solve for host
        slope = self.drift_ppm * 1e-6
        return (board_s - self.offset_s + slope * self.at_host_s) / (1.0 + slope)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["method"] = (
            "board CLOCK_MONOTONIC mapped to the host's: offset from the shortest of several clock exchanges over "
            "the agent's channel before and after the run (NTP-style), linear drift between them; error bound = "
            "half the longer round trip"
        )
        return out
