"""Tasmota plugs (Sonoff POW, Athom, Nous and other ESP plugs with an energy chip): ``Status 8`` over HTTP.

``GET http://ADDRESS/cm?cmnd=Status%208`` answers ``{"StatusSNS": {"Time": ..., "ENERGY": {...}}}``, the sensor
status Tasmota's documentation lists under JSON status responses. The fields used:

* ``StatusSNS.ENERGY.Power``: the active power in W -- the reading edgeprof samples. Tasmota prints it with
  ``WattRes`` decimals, 0 by default, so its default resolution is 1 W (set ``WattRes 2`` on the plug, and
  ``resolution_w = 0.01`` here, for finer readings). Devices with several channels print a list; ``channel`` picks
  one.
* ``StatusSNS.ENERGY.Total``: the energy counter in kWh (3 decimals: 1 Wh steps, kept as a coarse check).
"""

from __future__ import annotations

from .base import Driver, Reading, number


class TasmotaDriver(Driver):
    counter_step_wh = 1.0  # ENERGY.Total has three decimals, in kWh
    method = "Tasmota Status 8: StatusSNS.ENERGY.Power (W), StatusSNS.ENERGY.Total (kWh)"

    @property
    def url(self) -> str:
        return f"{self.config.base_url}/cm?cmnd=Status%208"

    def read(self) -> Reading:
        check = f"curl '{self.url}'"
        data = self.get_json(self.url, check)
        if isinstance(data, dict) and "WARNING" in data:
            raise self.schema_error("a status (it asked for a login)", data, check)
        sensors = data.get("StatusSNS") if isinstance(data, dict) else None
        energy = sensors.get("ENERGY") if isinstance(sensors, dict) else None
        if not isinstance(energy, dict):
            raise self.schema_error("StatusSNS.ENERGY (a plug with an energy monitoring chip)", data, check)
        power = energy.get("Power")
        if isinstance(power, list):
            if self.config.channel >= len(power):
                raise self.schema_error(f"channel {self.config.channel} (it has {len(power)})", data, check)
            power = power[self.config.channel]
        watts = number(power)
        if watts is None:
            raise self.schema_error("a number in StatusSNS.ENERGY.Power", data, check)
        total = energy.get("Total")
        total_kwh = number(total[self.config.channel] if isinstance(total, list) else total)
        return Reading(watts=watts, counter_wh=total_kwh * 1000.0 if total_kwh is not None else None)
