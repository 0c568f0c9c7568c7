"""A command on the host that prints the power (a USB meter's reader, a lab supply's script, ``curl | jq``).

The command is an argument list run without a shell, once a reading; the first number it prints is the reading, in
watts unless followed by ``mW`` or ``uW`` (the board agent's ``energy_command`` reads the same way), times
``scale``.
"""

from __future__ import annotations

import subprocess

from edgeprof_agent.energy.command import parse_watts

from ..errors import MeterError
from .base import Driver, Reading


class CommandDriver(Driver):
    @property
    def method(self) -> str:  # type: ignore[override]
        return f"command on the host: {' '.join(self.config.command or ())}"

    def read(self) -> Reading:
        argv = list(self.config.command or ())
        where = self.config.where()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.config.timeout_s, check=False)
        except FileNotFoundError:
            raise MeterError(f"the {where} does not exist on this host", "fix command in the meter's table") from None
        except subprocess.TimeoutExpired:
            raise MeterError(
                f"the {where} did not finish within {self.config.timeout_s:g} s", "raise timeout_s, or fix the command"
            ) from None
        except OSError as exc:
            raise MeterError(f"cannot run the {where}: {exc}", "fix command in the meter's table") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()
            raise MeterError(
                f"the {where} exited with {done.returncode}" + (f": {tail[-1]}" if tail else ""),
                "run it by hand to see why",
            )
        try:
            return Reading(watts=parse_watts(done.stdout) * self.config.scale)
        except ValueError as exc:
            raise MeterError(f"the {where} printed no reading: {exc}", "make it print the power, e.g. 4.21 W") from None
