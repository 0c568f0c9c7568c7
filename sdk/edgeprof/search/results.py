"""A study read back: its trials as a table or JSON, the noise-aware front, the λ-weighted optimum, the knee, and
the export of a chosen trial's model (``edgeprof search show`` and ``export``, and the report's section)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _table
from ..errors import EdgeprofError
from .front import Judge, Point, front, knee, lambda_curve, plain_front, weighted_optimum
from .objectives import Objective
from .study import Settings, format_value, load
from .trial import ratio


class ExportError(EdgeprofError):
    """The trial asked for cannot be exported."""


@dataclass
class TrialRow:
    """One trial as stored: its recipe, state, figures and where it stands."""

    number: int
    state: str  # COMPLETE, FAIL, RUNNING, WAITING
    recipe: str
    params: dict[str, Any]
    values: dict[str, float]
    figures: dict[str, Any]
    ratio: float | None
    feasible: bool
    broken: list[str]
    error: str | None
    same_as: int | None
    node: str | None
    seconds: dict[str, float]
    model_path: str | None
    compression: int | None
    front: bool = False
    plain_front: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class StudyResult:
    """Everything ``search show`` prints, computed from the study and the runs it stored."""

    name: str
    store: str
    settings: Settings
    objectives: list[Objective]
    trials: list[TrialRow]
    front: list[int]
    plain_front: list[int]
    curve: list[dict[str, Any]]
    knee: int | None
    best_within: dict[str, Any] | None
    lam: float | None = None
    optimum: int | None = None
    importances: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def primary(self) -> Objective:
        return next(o for o in self.objectives if o.efficiency)

    def trial(self, number: int) -> TrialRow:
        for row in self.trials:
            if row.number == number:
                return row
        raise ExportError(f"study {self.name} has no trial {number}", f"its trials: 0..{len(self.trials) - 1}")

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.trials:
            state = "interrupted" if row.state == "FAIL" and row.error is None else row.state.lower()
            if row.same_as is not None:
                state = "repeated"  # a recipe drawn again: the first trial's figures, nothing measured
            found[state] = found.get(state, 0) + 1
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.name,
            "store": self.store,
            "settings": self.settings.to_dict(),
            "objectives": [o.name for o in self.objectives],
            "counts": self.counts(),
            "trials": [t.to_dict() for t in self.trials],
            "front": self.front,
            "plain_front": self.plain_front,
            "lambda_curve": self.curve,
            "knee": self.knee,
            "best_within_max_drop": self.best_within,
            "lambda": self.lam,
            "optimum": self.optimum,
            "importances": self.importances,
        }

    def summary(self) -> str:
        s = self.settings
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        lines = [
            f"study {self.name} ({self.store}): {s.sampler}, {counts}",
            f"model {s.model}, data {s.data}, on {', '.join(s.targets)}, {s.repeat} processes per model and board",
            "objectives (minimised): " + ", ".join(o.label for o in self.objectives)
            + (f"; constraints: accuracy drop <= {s.max_drop:g}" if s.max_drop is not None else "")
            + ("; budget " + json.dumps(s.budget["limits"]) if s.budget else ""),
            "",
        ]  # fmt: skip
        rows = [self._baseline_row()] if self.trials else []
        for t in self.trials:
            if t.state == "WAITING":  # queued (a grid's recipes, an interrupted trial): counted in the header
                continue
            mark = "*" if t.front else ("(plain)" if t.plain_front else "")
            note = t.error or ("; ".join(t.broken) if t.broken else "")
            if t.same_as is not None:
                note = f"same recipe as trial {t.same_as}" + (f"; {note}" if note else "")
            drop = t.figures.get("accuracy_drop")
            rows.append(
                [
                    str(t.number),
                    "repeated"
                    if t.same_as is not None
                    else t.state.lower()
                    if t.state != "FAIL" or t.error
                    else "interrupted",
                    mark,
                    t.recipe,
                    *(format_value(o, t.values.get(o.name)) if t.values else "" for o in self.objectives),
                    *([f"{round(drop, 9) + 0.0:+.2f} pp" if drop is not None else ""] if self._drop_column else []),
                    _speed(t.figures),
                    note,
                ]
            )
        names = [o.name for o in self.objectives] + (["accuracy drop"] if self._drop_column else [])
        head = ["trial", "state", "front", "recipe", *names, "vs float32", "note"]
        lines.append(_table.table(head, rows, align="llll" + "r" * len(names) + "ll"))
        lines.append("")
        lines.append(
            "front (*): no other trial is as good on every objective and better on one, beyond the noise "
            "(latency and memory by compare's test over the runs); (plain): on the front only when every "
            "difference is taken at face value."
        )
        lines += self._choices()
        return "\n".join(lines)

    @property
    def _drop_column(self) -> bool:
        """The accuracy drop is shown even when it is a constraint (--max-drop), not an objective."""
        return all(o.kind.key != "accuracy_drop" for o in self.objectives)

    def _baseline_row(self) -> list[str]:
        latest = next((t.figures for t in reversed(self.trials) if t.state == "COMPLETE"), None)
        cells = []
        for o in self.objectives:
            if latest is None:
                cells.append("")
            elif o.kind.key == "accuracy_drop":
                cells.append(format_value(o, 0.0))
            else:
                cells.append(format_value(o, o.baseline(latest)))
        cells += ["+0.00 pp"] if self._drop_column else []
        return ["float32", "reference", "", "float32 export", *cells, "", "baseline of every trial (latest run)"]

    def _choices(self) -> list[str]:
        lines = []
        if self.best_within is not None:
            b = self.best_within
            if b.get("trial") is None:
                lines.append(f"\nwithin {b['max_drop']:g} pp: no complete trial meets every constraint")
            else:
                row = self.trial(b["trial"])
                same = [n for n in b["within_noise"] if n != b["trial"]]
                lines.append(
                    f"\nbest within {b['max_drop']:g} pp ({self.primary.name}): trial {row.number}, {row.recipe}: "
                    f"{format_value(self.primary, row.values.get(self.primary.name))} (vs float32: "
                    f"{_speed(row.figures)}), accuracy drop "
                    f"{row.values.get('accuracy_drop', row.figures.get('accuracy_drop')):+.2f}"
                    + (f"; as good within noise: trial {', '.join(map(str, same))}" if same else "")
                )
        if self.curve:
            lines.append(
                f"\nλ-weighted optimum, argmin(accuracy drop + λ · {self.primary.name} ratio to float32), as λ grows:"
            )
            for seg in self.curve:
                row = self.trial(seg["trial"])
                lines.append(
                    f"  λ {seg['from']:.3g} .. {seg['to']:.3g}: trial {row.number} ({row.recipe}; drop "
                    f"{seg['drop']:+.2f}, ratio {seg['ratio']:.3f})"
                )
        if self.lam is not None:
            lines.append(
                f"λ = {self.lam:g}: trial {self.optimum}" if self.optimum is not None else f"λ = {self.lam:g}: none"
            )
        if self.knee is not None:
            row = self.trial(self.knee)
            lines.append(f"knee of the front: trial {row.number} ({row.recipe})")
        if self.importances:
            lines.append("\nparameter importances (fANOVA):")
            for objective, found in self.importances.items():
                top = ", ".join(f"{k} {v:.2f}" for k, v in list(found.items())[:5])
                lines.append(f"  {objective}: {top}")
        return lines


def _speed(figures: dict[str, Any]) -> str:
    words = []
    boards = figures.get("boards") or {}
    for name, board in boards.items():
        speed = board.get("speed") or {}
        if speed.get("verdict"):
            words.append(speed["verdict"] + (f" ({name})" if len(boards) > 1 else ""))
        elif board.get("error"):
            words.append(f"{name} failed")
    return "; ".join(words)


def _rows(study: Any, settings: Settings, objectives: list[Objective]) -> list[TrialRow]:
    rows = []
    primary = next(o for o in objectives if o.efficiency)
    space = settings.space_obj()
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        figures = attrs.get("figures") or {}
        values = dict(zip(settings.objectives, t.values, strict=True)) if t.values else {}
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                recipe=attrs.get("recipe_text") or figures.get("recipe") or "",
                params=space.shaping(dict(t.params)),  # NSGA-II's dormant fields left out
                values=values,
                figures=figures,
                ratio=attrs.get("ratio", ratio(figures, primary) if figures and values else None),
                feasible=all(c <= 0 for c in attrs.get("constraints") or [0.0]),
                broken=list(attrs.get("broken") or []),
                error=attrs.get("error"),
                same_as=attrs.get("same_as"),
                node=attrs.get("node"),
                seconds=attrs.get("seconds") or {},
                model_path=attrs.get("model_path"),
                compression=attrs.get("compression") or figures.get("compression"),
            )
        )
    return rows


def points(rows: list[TrialRow], objectives: list[Objective]) -> list[Point]:
    found = []
    for row in rows:
        if row.state != "COMPLETE" or not row.values or row.same_as is not None:  # a repeat is its original's point
            continue
        groups = {name: b["trial_group"] for name, b in (row.figures.get("boards") or {}).items() if "trial_group" in b}
        drop = row.values.get("accuracy_drop", row.figures.get("accuracy_drop"))
        found.append(Point(row.number, row.values, drop, row.ratio, row.feasible, groups))
    return found


def load_result(store: Any, name: str, *, lam: float | None = None, importances: bool = False) -> StudyResult:
    """The study ``name`` of ``store`` (a :class:`~edgeprof.store.Store`) with its front and choices computed."""
    study, settings = load(store.url, name)
    objectives = settings.objective_list()
    rows = _rows(study, settings, objectives)
    pts = points(rows, objectives)
    cache: dict[int, list[dict[str, Any]]] = {}

    def runs(group: int) -> list[dict[str, Any]]:
        if group not in cache:
            cache[group] = store.group(group)["runs"]
        return cache[group]

    judge = Judge(objectives, runs)
    kept = {p.number for p in front(pts, judge)}
    plain = {p.number for p in plain_front(pts, objectives)}
    for row in rows:
        row.front, row.plain_front = row.number in kept, row.number in plain
    on_front = [p for p in pts if p.number in kept]
    found_knee = knee(on_front)
    best = _best_within(settings, pts, objectives, judge)
    optimum = weighted_optimum(pts, lam) if lam is not None else None
    return StudyResult(
        name=name,
        store=store.location,
        settings=settings,
        objectives=objectives,
        trials=rows,
        front=sorted(kept),
        plain_front=sorted(plain),
        curve=lambda_curve(pts),
        knee=found_knee.number if found_knee is not None else None,
        best_within=best,
        lam=lam,
        optimum=optimum.number if optimum is not None else None,
        importances=_importances(study, settings) if importances else {},
    )


def _best_within(settings: Settings, pts: list[Point], objectives: list[Objective], judge: Judge) -> Any:
    """With ``--max-drop``: the most efficient feasible trial on the primary objective, and those the
    measurements cannot tell from it (the accuracy-bounded answer, as NNCF gives for quantization)."""
    if settings.max_drop is None:
        return None
    primary = next(o for o in objectives if o.efficiency)
    feasible = [p for p in pts if p.feasible]
    if not feasible:
        return {"max_drop": settings.max_drop, "trial": None, "within_noise": []}
    best = min(feasible, key=lambda p: (p.values[primary.name], p.drop or 0.0))
    same = [p.number for p in feasible if p is best or judge.order(p, best, primary) == 0]
    return {"max_drop": settings.max_drop, "objective": primary.name, "trial": best.number, "within_noise": same}


def _importances(study: Any, settings: Settings) -> dict[str, dict[str, float]]:
    """fANOVA importance of each parameter for each objective (Optuna's default evaluator); empty when the study
    is too small to say (fewer than 2 complete trials, or a parameter that never varied)."""
    from .study import _optuna, quiet

    optuna = _optuna()
    found = {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 3:
        return {}
    for i, name in enumerate(settings.objectives):
        try:
            with quiet():
                found[name] = optuna.importance.get_param_importances(
                    study,
                    target=lambda t, i=i: t.values[i],
                    evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                )
        except (RuntimeError, ValueError, ZeroDivisionError):
            continue
    return found


def export(store: Any, name: str, out: str | Path, *, trial: int | None = None, lam: float | None = None) -> dict:
    """Copy a trial's ``model.tflite`` and ``manifest.json`` to ``out``: trial ``trial``, or the λ-weighted optimum
    for ``lam``. Returns what was written."""
    if (trial is None) == (lam is None):
        raise ExportError("export needs one of --trial N or --lambda L", "e.g. --trial 7, or --lambda 10")
    result = load_result(store, name, lam=lam)
    number = trial if trial is not None else result.optimum
    if number is None:
        raise ExportError(f"no complete trial of study {name} meets its constraints", "run more trials")
    row = result.trial(number)
    if row.model_path is None:
        raise ExportError(
            f"trial {number} of study {name} has no model ({row.state.lower()}: {row.error or 'not run yet'})",
            "export a complete trial (edgeprof search show " + name + ")",
        )
    source = Path(row.model_path)
    expected = (row.figures or {}).get("sha256")
    if not source.is_file():
        raise ExportError(
            f"trial {number}'s model is not on this machine ({source}; it ran on {row.node})",
            "run export where the study's folder is, or copy that folder here",
        )
    from ..modelfile import sha256_bytes

    data = source.read_bytes()
    if expected and sha256_bytes(data) != expected:
        raise ExportError(f"{source} changed since trial {number} made it", "rerun the trial (search --resume)")
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target / "model.tflite")
    manifest = source.with_name("manifest.json")
    if manifest.is_file():
        shutil.copyfile(manifest, target / "manifest.json")
    else:
        (target / "manifest.json").write_text(json.dumps(store.compression(row.compression)["record"], indent=2))
    return {
        "study": name,
        "trial": number,
        "recipe": row.recipe,
        "lambda": lam,
        "model": str(target / "model.tflite"),
        "manifest": str(target / "manifest.json"),
        "sha256": sha256_bytes(data),
        "state": row.state,
    }


__all__ = ["ExportError", "StudyResult", "TrialRow", "export", "load_result", "points"]
