"""Power meters on the host: energy per inference on boards without a power sensor.

A target's ``[targets.NAME.meter]`` (config.py) names a metering smart plug (Shelly Gen2 RPC, Tasmota), any JSON
endpoint, or a command; a driver a file reads it (shelly.py, tasmota.py, http_json.py, command.py over base.py).
During a profile the host reads it in a thread (sampler.py), maps the agent's windows from the board's clock to its
own (clock.py), decides when the meter has read enough for the asked precision (session.py) and computes energy
per inference above idle with its 95 % interval (estimate.py).
"""

from __future__ import annotations

from .config import KINDS, MeterConfig, parse_meter
from .session import MeteredRun, open_driver

__all__ = ["KINDS", "MeterConfig", "MeteredRun", "open_driver", "parse_meter"]
