"""Errors a user can act on.

Each carries the problem and the fix; the CLI prints them as one line and exits non-zero. Anything else that
escapes is a bug in edgeprof and is shown with its traceback.
"""

from __future__ import annotations


class EdgeprofError(Exception):
    """Base class: ``problem`` says what is wrong, ``fix`` what to do about it."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


class ModelError(EdgeprofError):
    """The model file is missing, corrupt, or not of a kind edgeprof can handle."""


class DataError(EdgeprofError):
    """The data set is missing, malformed, or does not fit the model."""


class RecipeError(EdgeprofError):
    """A compression recipe is invalid."""


class CompressionError(EdgeprofError):
    """A compression step failed on this model."""


class TargetError(EdgeprofError):
    """A target is unknown or misconfigured."""


class TransportError(EdgeprofError):
    """A board could not be reached, or dropped while in use."""


class AgentError(EdgeprofError):
    """The device agent reported a failure; ``code`` is the protocol's stable error code."""

    def __init__(self, problem: str, fix: str = "", code: str = "internal") -> None:
        super().__init__(problem, fix)
        self.code = code


class StoreError(EdgeprofError):
    """The results store cannot be opened or written."""


class MeterError(EdgeprofError):
    """A power meter on the host is misconfigured, unreachable, or answers with something that is not a reading."""


class TrackingError(EdgeprofError):
    """An experiment tracker (MLflow) could not be reached or refused a run; the local result is kept."""
