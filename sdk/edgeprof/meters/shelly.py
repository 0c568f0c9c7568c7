"""Shelly Gen2+ plugs (Plus Plug S, Plus 1PM, Pro 1PM...): the documented RPC ``Switch.GetStatus`` over HTTP.

``GET http://ADDRESS/rpc/Switch.GetStatus?id=CHANNEL`` returns the switch's status object. The fields used, as
Shelly's Gen2 API documentation describes them (Components: Switch, status):

* ``apower``: "Last measured instantaneous active power (in Watts) delivered to the attached load (shown if
  applicable)" -- the reading edgeprof samples;
* ``aenergy.total``: "Total energy consumed in Watt-hours" -- a counter, used to check the sampled energy on runs
  long enough for its 1 mWh steps;
* ``aenergy.by_minute``: "Energy consumption by minute (in Milliwatt-hours) for the last three minutes (the lower
  the index of the element in the array, the closer to the current moment the minute)", with ``aenergy.minute_ts``
  "Unix timestamp of the first second of the last minute (in UTC)" -- kept with the result as the plug's own record;
* ``output``: "true if the output channel is currently on, false otherwise" -- a plug that is off reads 0 W.

An id that does not exist is answered with the RPC error object (``{"code": -105, "message": ...}``).
"""

from __future__ import annotations

from .base import Driver, Reading, number


class ShellyDriver(Driver):
    counter_step_wh = 0.001  # aenergy.total has three decimals, in Wh
    method = "Shelly Gen2 RPC Switch.GetStatus: apower (W), aenergy.total (Wh), aenergy.by_minute (mWh)"

    @property
    def url(self) -> str:
        return f"{self.config.base_url}/rpc/Switch.GetStatus?id={self.config.channel}"

    def read(self) -> Reading:
        check = f"curl '{self.url}'"
        data = self.get_json(self.url, check)
        if not isinstance(data, dict):
            raise self.schema_error("a switch status object", data, check)
        watts = number(data.get("apower"))
        if watts is None:
            raise self.schema_error("'apower' (a Gen2 switch with power metering)", data, check)
        energy = data.get("aenergy") if isinstance(data.get("aenergy"), dict) else {}
        by_minute = energy.get("by_minute")
        extra = {}
        if isinstance(by_minute, list) and all(number(v) is not None for v in by_minute):
            extra = {"by_minute_mwh": [float(v) for v in by_minute], "minute_ts": energy.get("minute_ts")}
        output = data.get("output")
        return Reading(
            watts=watts,
            counter_wh=number(energy.get("total")),
            relay_on=output if isinstance(output, bool) else None,
            extra=extra,
        )
