"""The report's section on searches: per study, its trials scattered over the objectives with the noise-aware front,
the float32 model, the knee and each trial's spread; the front's table; parameter importances.

Drawn only when the store holds studies (``edgeprof search``), and only with Optuna installed; a store with studies
but without Optuna says so in the section instead of failing the report.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from .plots import DPI, Plot, _figure, _png


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


@dataclass
class StudySection:
    name: str
    result: Any  # edgeprof.search.results.StudyResult
    plots: list[Plot] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        found = self.result.to_dict()
        return {
            "study": self.name,
            "objectives": found["objectives"],
            "counts": found["counts"],
            "front": found["front"],
            "knee": found["knee"],
            "lambda_curve": found["lambda_curve"],
            "importances": found["importances"],
            "plots": [p.name for p in self.plots],
        }


def _spread(figures: dict[str, Any], objective: Any, runs: Any) -> tuple[float, float] | None:
    """The lowest and highest run figure behind a trial's value on a board (its process-to-process spread)."""
    if not objective.kind.noisy:
        return None
    board = (figures.get("boards") or {}).get(objective.target or "") or {}
    group = board.get("trial_group")
    if group is None:
        return None
    column = {"median_ms": "median_ms", "p90_ms": "p90_ms", "peak_memory_mib": "peak_rss_kb",
              "energy_mj": "energy_mj"}[objective.kind.key]  # fmt: skip
    scale = 1 / 1024 if column == "peak_rss_kb" else 1.0
    values = [float(r[column]) * scale for r in runs(group) if r.get(column) is not None]
    return (min(values), max(values)) if values else None


def scatter(result: Any, objective: Any, runs: Any) -> Plot:
    """Accuracy drop (up is worse) against one efficiency objective (right is worse), every complete trial."""
    fig = _figure(7.2, 4.4)
    ax = fig.add_subplot()
    complete = [t for t in result.trials if t.state == "COMPLETE" and t.values and t.same_as is None]
    drop = "accuracy_drop"

    def y_of(t: Any) -> float:
        return t.values.get(drop, t.figures.get("accuracy_drop")) or 0.0

    groups = (
        ("not on the front", [t for t in complete if not t.front and t.feasible], "o", "#9a9a9a", "none"),
        ("over a constraint", [t for t in complete if not t.feasible], "x", "#b3261e", None),
        ("noise-aware front", [t for t in complete if t.front], "o", "#1f77b4", "#1f77b4"),
    )
    for label, trials, marker, color, face in groups:
        if not trials:
            continue
        xs = [t.values[objective.name] for t in trials]
        ys = [y_of(t) for t in trials]
        spreads = [_spread(t.figures, objective, runs) for t in trials]
        if any(spreads):
            low = [x - (s[0] if s else x) for x, s in zip(xs, spreads, strict=True)]
            high = [(s[1] if s else x) - x for x, s in zip(xs, spreads, strict=True)]
            ax.errorbar(xs, ys, xerr=[low, high], fmt="none", ecolor="#c8c8c8", elinewidth=1.0, capsize=2, zorder=1)
        kwargs = {"facecolors": face} if face is not None else {}
        ax.scatter(xs, ys, marker=marker, s=42, edgecolors=color if marker != "x" else None,
                   c=color if marker == "x" else None, label=label, zorder=3, **kwargs)  # fmt: skip
        if label == "noise-aware front":  # the trials a reader looks up in the table: the others would crowd it
            for t, x, y in zip(trials, xs, ys, strict=True):
                ax.annotate(str(t.number), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    front = sorted((t for t in complete if t.front), key=lambda t: t.values[objective.name])
    if len(front) > 1:
        ax.plot([t.values[objective.name] for t in front], [y_of(t) for t in front], color="#1f77b4", lw=0.8,
                alpha=0.5, zorder=2)  # fmt: skip
    base = next((objective.baseline(t.figures) for t in reversed(complete) if objective.baseline(t.figures)), None)
    if base is not None:
        ax.scatter([base], [0.0], marker="*", s=160, c="#2ca02c", label="float32 model", zorder=4)
    if result.knee is not None:
        knee = next((t for t in complete if t.number == result.knee), None)
        if knee is not None:
            ax.scatter([knee.values[objective.name]], [y_of(knee)], s=220, facecolors="none", edgecolors="#ff7f0e",
                       linewidths=2, label="knee", zorder=5)  # fmt: skip
    xs = [t.values[objective.name] for t in complete] + ([base] if base is not None else [])
    ax.set_xlim(0, max(xs) * 1.15 if xs and max(xs) > 0 else 1)
    ax.axhline(0.0, color="#bbb", lw=0.8)
    if max((y_of(t) for t in complete), default=0.0) > 10:  # a ruined trial (25 pp) would flatten the rest
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(top=1.6 * max(y_of(t) for t in complete))
    if result.settings.max_drop is not None:
        ax.axhline(result.settings.max_drop, color="#b3261e", lw=0.8, ls="--", label="--max-drop")
    ax.set_xlabel(objective.label)
    ax.set_ylabel(f"accuracy drop ({(complete[0].figures.get('accuracy_unit') if complete else 'pp') or 'pp'})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    caption = (
        f"Every complete trial of study {result.name}: accuracy drop against {objective.label}, with the spread of "
        "its run figures (lowest to highest process) where it was measured on a board. Filled: the noise-aware "
        "front (no other trial is as good everywhere and better somewhere, beyond the noise), numbered as in the "
        "table. The x axis starts at zero; the y axis is linear within ±1 pp and logarithmic beyond when a trial "
        "lost more than 10 pp."
    )
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"search_{result.name}_{objective.name}")  # a file name for --png
    return Plot(stem, f"{result.name}: {objective.label}", caption, _png(fig), fig)


def sections(store: Any) -> tuple[list[StudySection], str | None]:
    """One section per study of the store, or why there are none to draw (None: the store has no study)."""
    from sqlalchemy import inspect

    with store.engine.connect() as conn:
        if "studies" not in inspect(conn).get_table_names():
            return [], None
    try:
        from ..search.results import load_result
        from ..search.study import names
    except ImportError as exc:  # pragma: no cover - edgeprof's own modules import without Optuna
        return [], f"cannot read the studies: {exc}"
    try:
        studies = names(store.url)
    except Exception as exc:  # noqa: BLE001 - Optuna missing, or a study table of another tool: say so
        return [], f"the store holds search studies, but they cannot be read here ({exc})"
    found = []
    cache: dict[int, list[dict[str, Any]]] = {}

    def runs(group: int) -> list[dict[str, Any]]:
        if group not in cache:
            cache[group] = store.group(group)["runs"]
        return cache[group]

    for summary in studies:
        result = load_result(store, summary["name"], importances=True)
        section = StudySection(summary["name"], result)
        efficiency = [o for o in result.objectives if o.efficiency]
        if any(t.state == "COMPLETE" for t in result.trials):
            section.plots = [scatter(result, o, runs) for o in efficiency]
        found.append(section)
    return found, None


def html_section(found: list[StudySection], note: str | None, figure: Any) -> str:
    """The HTML of the search section (``figure`` draws a :class:`Plot` as the report draws every plot)."""
    if not found and note is None:
        return ""
    parts = ["<h2>Searches</h2>"]
    if note:
        parts.append(f"<p>{_e(note)}</p>")
    for section in found:
        r = section.result
        s = r.settings
        counts = ", ".join(f"{n} {k}" for k, n in sorted(r.counts().items()))
        parts.append(
            f"<h3>Study {_e(r.name)}</h3><p class=meta>{_e(s.sampler)} · {_e(counts)} · on {_e(', '.join(s.targets))}"
            f" · objectives {_e(', '.join(s.objectives))}"
            + (f" · max drop {s.max_drop:g} pp" if s.max_drop is not None else "")
            + (" · budget" if s.budget else "")
            + "</p>"
        )
        parts += [figure(plot) for plot in section.plots]
        head = "".join(f"<th>{_e(o.name)}</th>" for o in r.objectives)
        rows = []
        for t in r.trials:
            if not t.front:
                continue
            cells = "".join(f"<td>{_e(_value(o, t))}</td>" for o in r.objectives)
            mark = " (knee)" if t.number == r.knee else ""
            rows.append(f"<tr><td>{t.number}{mark}</td><td class=l>{_e(t.recipe)}</td>{cells}"
                        f"<td class=l>{_e(_verdicts(t.figures))}</td></tr>")  # fmt: skip
        if rows:
            parts.append(
                "<div class=wide><table><tr><th>trial</th><th class=l>recipe</th>"
                f"{head}<th class=l>vs float32 (compare)</th></tr>{''.join(rows)}</table></div>"
            )
        if r.curve:
            items = "".join(
                f"<li>λ {seg['from']:.3g} – {seg['to']:.3g}: trial {seg['trial']} (drop {seg['drop']:+.2f}, ratio "
                f"{seg['ratio']:.3f})</li>"
                for seg in r.curve
            )
            parts.append(f"<p>λ-weighted optimum, argmin(accuracy drop + λ · ratio), as λ grows:</p><ul>{items}</ul>")
        if r.importances:
            rows = "".join(
                f"<tr><td class=l>{_e(obj)}</td><td class=l>"
                + _e(", ".join(f"{k} {v:.2f}" for k, v in found_.items()))
                + "</td></tr>"
                for obj, found_ in r.importances.items()
            )
            parts.append(f"<p>Parameter importances (fANOVA):</p><table>{rows}</table>")
    return "".join(parts)


def _value(objective: Any, trial: Any) -> str:
    from ..search.study import format_value

    return format_value(objective, trial.values.get(objective.name))


def _verdicts(figures: dict[str, Any]) -> str:
    boards = figures.get("boards") or {}
    return "; ".join(
        f"{(b.get('speed') or {}).get('verdict', '-')}" + (f" ({name})" if len(boards) > 1 else "")
        for name, b in boards.items()
    )


__all__ = ["DPI", "StudySection", "html_section", "scatter", "sections"]
