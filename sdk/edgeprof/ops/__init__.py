"""Per-operator latency on the host side: what each operator costs (``costs``) and which operators changed between
two runs or groups (``compare``). The measurement runs on the board (``edgeprof_agent/operators.py`` and
``peak.py``); its figures are the record's typed ``ops`` part (``edgeprof_agent.record.Operators``), rendered by
``edgeprof.views`` like every other figure of a run."""

from __future__ import annotations

from .compare import OpsComparison, compare_ops
from .costs import annotate
from .names import layer_name

__all__ = ["OpsComparison", "annotate", "compare_ops", "layer_name"]
