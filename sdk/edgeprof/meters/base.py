"""What every meter driver provides: one reading a call, or a :class:`MeterError` that says what to do.

A driver's ``read()`` returns a :class:`Reading`: the power in watts, plus whatever else the meter documents that
helps check the figure (an energy counter, whether the relay is on). Network meters are read over plain HTTP with a
timeout; a meter that does not answer, answers slowly, answers with something that is not JSON, or with JSON of
another schema, raises a :class:`MeterError` naming the meter and the fix, never a traceback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ..errors import MeterError
from .config import MeterConfig


@dataclass
class Reading:
    watts: float
    counter_wh: float | None = None  # a cumulative energy counter, where the meter has one
    relay_on: bool | None = None  # plugs: is the output switched on?
    extra: dict[str, Any] = field(default_factory=dict)


class Driver:
    """Reads one meter. Subclasses set ``method`` (what is read, quoted from the vendor's documentation)."""

    method = ""
    counter_step_wh: float | None = None  # the step of the meter's energy counter, where it has one

    def __init__(self, config: MeterConfig) -> None:
        self.config = config

    def read(self) -> Reading:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.config.kind,
            "where": self.config.where(),
            "method": self.method,
            "rate_hz": self.config.rate_hz,
            "resolution_w": self.config.resolution_w,
        }

    def close(self) -> None:
        pass

    # -- helpers -------------------------------------------------------------------------------------------------

    def get_json(self, url: str, check: str) -> Any:
        """GET ``url`` and parse its JSON body; ``check`` is the command a user can run to see it themselves."""
        where = self.config.where()
        timeout = self.config.timeout_s
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "edgeprof"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read(1 << 20)
        except urllib.error.HTTPError as exc:
            body = exc.read(4096) if exc.fp is not None else b""
            detail = _vendor_error(body) or exc.reason
            if exc.code in (401, 403):
                raise MeterError(
                    f"the {where} asks for a login (HTTP {exc.code})",
                    'turn its authentication off for the bench network, or read it with kind = "command"',
                ) from None
            raise MeterError(
                f"the {where} answered HTTP {exc.code} ({detail}) to {url}", f"check its address and channel: {check}"
            ) from None
        except TimeoutError:
            raise MeterError(
                f"the {where} did not answer within {timeout:g} s",
                f"check that it is on and reachable ({check}); a slow network: raise timeout_s in the meter's table",
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise MeterError(
                    f"the {where} did not answer within {timeout:g} s",
                    f"check that it is on and reachable ({check}); a slow network: raise timeout_s",
                ) from None
            raise MeterError(
                f"cannot reach the {where}: {reason}",
                f"check its address in the config and that it is on the network ({check})",
            ) from None
        try:
            return json.loads(body)
        except ValueError:
            shown = body[:60].decode("utf-8", "replace").replace("\n", " ")
            raise MeterError(
                f"the {where} answered with something that is not JSON ({shown!r}...)",
                f"check that the address is the meter's, not another device's ({check})",
            ) from None

    def schema_error(self, what: str, data: Any, check: str) -> MeterError:
        shown = json.dumps(data)[:120] if not isinstance(data, bytes) else repr(data[:120])
        return MeterError(
            f"the {self.config.where()} answered without {what} (got {shown})",
            f"check that it is a {self.config.kind} meter with power metering and its firmware is current ({check})",
        )


def _vendor_error(body: bytes) -> str | None:
    """Shelly's RPC errors are ``{"code": -105, "message": "..."}``; anything else: None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return f"{data.get('code')}: {data['message']}"
    return None


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (strings, booleans, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
