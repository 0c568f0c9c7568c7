"""A power meter on the host, per target: ``[targets.NAME.meter]`` in edgeprof.toml.

    [targets.kitchen-pi.meter]
    kind = "shelly"            # shelly | tasmota | http-json | command
    address = "192.168.1.50"   # the plug (host, host:port or http://host:port)

Boards without a power sensor (a Raspberry Pi 3 or 4, a Coral board) are plugged into a metering smart plug or a
USB meter; the host reads it while the agent runs. Each kind reads one documented value (see its driver), at
``rate_hz`` (how often the meter updates its reading: 1 Hz for plugs), with readings in steps of ``resolution_w``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import TargetError

KINDS = ("shelly", "tasmota", "http-json", "command")

# Defaults per kind: how often the meter updates its reading and the step of a reading.
_RATE_HZ = {"shelly": 1.0, "tasmota": 1.0, "http-json": 1.0, "command": 1.0}
_RESOLUTION_W = {"shelly": 0.1, "tasmota": 1.0, "http-json": 0.0, "command": 0.0}

_KEYS: dict[str, Any] = {
    "kind": str,
    "address": str,
    "channel": int,
    "url": str,
    "field": str,
    "scale": (int, float),
    "command": list,
    "rate_hz": (int, float),
    "resolution_w": (int, float),
    "timeout_s": (int, float),
    "accuracy_pct": (int, float),
    "description": str,
}
_ADDRESS = re.compile(r"^(?:https?://)?[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?/?$")
_FIELD = re.compile(r"^[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*$")


@dataclass(frozen=True)
class MeterConfig:
    """One meter, as the config file describes it (validated)."""

    kind: str
    address: str | None = None  # shelly, tasmota
    channel: int = 0  # shelly: the Switch id; tasmota: the power channel of a multi-channel device
    url: str | None = None  # http-json
    field: str | None = None  # http-json: dotted path to the watts, e.g. "meter.power_w"
    scale: float = 1.0  # http-json / command: multiply the value by this to get watts (0.001 for mW)
    command: tuple[str, ...] | None = None  # command: argv run on the host, no shell; prints watts
    rate_hz: float = 1.0
    resolution_w: float = 0.0
    timeout_s: float = 2.0
    accuracy_pct: float | None = None  # the meter's stated calibration accuracy, if known
    description: str = ""

    @property
    def base_url(self) -> str:
        """``http://host[:port]`` for the plug kinds."""
        address = (self.address or "").rstrip("/")
        return address if address.startswith(("http://", "https://")) else f"http://{address}"

    def where(self) -> str:
        """The meter in a user's words, for messages."""
        if self.kind in ("shelly", "tasmota"):
            return f"{self.kind} plug at {self.address}"
        if self.kind == "http-json":
            return f"http-json meter at {self.url}"
        return f"command meter '{' '.join(self.command or ())}'"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["command"] = list(self.command) if self.command else None
        return {k: v for k, v in data.items() if v not in (None, "")}


def parse_meter(table: Any, target: str, path: Any) -> MeterConfig:
    """``[targets.NAME.meter]`` to a :class:`MeterConfig`, or a :class:`TargetError` naming the bad key."""
    where = f"{path}: [targets.{target}.meter]"
    if not isinstance(table, dict):
        raise TargetError(f"{where} must be a table", 'write e.g. kind = "shelly" and address = "192.168.1.50"')
    for key, value in table.items():
        want = _KEYS.get(key)
        if want is None:
            raise TargetError(f"{where} has an unknown setting {key!r}", f"known settings: {', '.join(_KEYS)}")
        if not isinstance(value, want) or isinstance(value, bool):
            raise TargetError(f"{where}: {key} = {value!r} has the wrong type", "see the README, 'Power meters'")
    kind = table.get("kind")
    if kind not in KINDS:
        raise TargetError(f"{where}: kind = {kind!r}", f"choose one of: {', '.join(KINDS)}")
    needs = {"shelly": ("address",), "tasmota": ("address",), "http-json": ("url", "field"), "command": ("command",)}
    missing = [k for k in needs[kind] if not table.get(k)]
    if missing:
        example = {
            "shelly": 'address = "192.168.1.50"',
            "tasmota": 'address = "192.168.1.51"',
            "http-json": 'url = "http://10.0.0.9/api/power" and field = "meter.power_w"',
            "command": 'command = ["/usr/local/bin/usb-meter", "--watts"]',
        }[kind]
        raise TargetError(f"{where}: kind {kind!r} needs {' and '.join(missing)}", f"add {example}")
    if kind in ("shelly", "tasmota") and not _ADDRESS.match(table["address"]):
        raise TargetError(f"{where}: address {table['address']!r} is not a host or host:port", "e.g. 192.168.1.50")
    if kind == "http-json":
        if not str(table["url"]).startswith(("http://", "https://")):
            raise TargetError(f"{where}: url {table['url']!r} is not an http(s) URL", "e.g. http://10.0.0.9/power")
        if not _FIELD.match(table["field"]):
            raise TargetError(f"{where}: field {table['field']!r} is not a dotted path", "e.g. meter.power_w")
    if kind == "command" and not (table["command"] and all(isinstance(a, str) for a in table["command"])):
        raise TargetError(f"{where}: command must be a list of strings", 'e.g. ["/usr/local/bin/meter", "--watts"]')
    rate = float(table.get("rate_hz", _RATE_HZ[kind]))
    if not 0.01 <= rate <= 100:
        raise TargetError(f"{where}: rate_hz = {rate:g} is out of range", "a meter's update rate in Hz, 0.01-100")
    for key, low in (("resolution_w", 0.0), ("timeout_s", 0.05), ("scale", None), ("accuracy_pct", 0.0)):
        if key in table and low is not None and float(table[key]) < low:
            raise TargetError(f"{where}: {key} = {table[key]!r} must be >= {low:g}", "see the README, 'Power meters'")
    if table.get("channel", 0) < 0:
        raise TargetError(f"{where}: channel = {table['channel']} must be >= 0", "0 is the first switch/channel")
    return MeterConfig(
        kind=kind,
        address=table.get("address"),
        channel=int(table.get("channel", 0)),
        url=table.get("url"),
        field=table.get("field"),
        scale=float(table.get("scale", 1.0)),
        command=tuple(table["command"]) if table.get("command") else None,
        rate_hz=rate,
        resolution_w=float(table.get("resolution_w", _RESOLUTION_W[kind])),
        timeout_s=float(table.get("timeout_s", 2.0)),
        accuracy_pct=float(table["accuracy_pct"]) if "accuracy_pct" in table else None,
        description=table.get("description", ""),
    )
