"""Per-operator latency on the host side: what each operator costs (``costs``), how its figures read (``render``),
and which operators changed between two runs (``compare``). The measurement itself runs on the board
(``edgeprof_agent/operators.py`` and ``peak.py``); its record is the ``ops`` key of a profile result."""

from __future__ import annotations

from .compare import OpsComparison, compare_ops
from .costs import annotate
from .names import layer_name
from .render import summary_lines, table_lines

__all__ = ["OpsComparison", "annotate", "compare_ops", "layer_name", "summary_lines", "table_lines"]
