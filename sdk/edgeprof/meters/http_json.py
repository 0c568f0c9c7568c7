"""Any meter with a JSON endpoint (a lab supply's web API, a USB meter behind a small server, Home Assistant).

``GET url`` returns JSON; ``field`` is the dotted path to the power (list indexes are numbers: ``channels.0.w``)
and ``scale`` turns its unit into watts (0.001 for mW).
"""

from __future__ import annotations

from typing import Any

from .base import Driver, Reading, number


class HttpJsonDriver(Driver):
    @property
    def method(self) -> str:  # type: ignore[override]
        return f"HTTP GET {self.config.url}: {self.config.field} x {self.config.scale:g} (W)"

    def read(self) -> Reading:
        url = self.config.url or ""
        check = f"curl '{url}'"
        data = self.get_json(url, check)
        value: Any = data
        for part in (self.config.field or "").split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise self.schema_error(f"the field {self.config.field!r}", data, check)
        watts = number(value)
        if watts is None:
            raise self.schema_error(f"a number at {self.config.field!r}", data, check)
        return Reading(watts=watts * self.config.scale)
