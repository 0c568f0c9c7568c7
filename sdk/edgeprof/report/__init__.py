"""One self-contained HTML report of what the store holds: plots (matplotlib, inlined as base64 PNG) and tables.

report = build_report(open_store())
Path("report.html").write_text(report.html())

The page has no external resource (no script, font or stylesheet to fetch), so it can be mailed, archived as a CI
artefact, or opened on a machine without network.

Colours and verdict words come from two places only: the verdict of ``edgeprof results compare`` (a latency change is
green or red only when it is beyond run-to-run noise) and the user's budget (``build_report(store, budget=...)``:
a figure within its limit is green, over it red). Without a budget, accuracy and size are shown without colour:
whether a 0.5 pp loss is acceptable is the user's call, not a threshold of ours.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _table
from .._version import __version__
from ..budget import METRICS, Budget, BudgetReport, Check, check_store
from ..store import Store
from ..store.lineage import Merit, format_headline
from ..store.sql import energy_mj
from ..views import energy_cell, load
from .collect import ReportData, collect
from .plots import Plot, all_plots, labels

Progress = Callable[[int, int], None]


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _num(value: float | None, fmt: str) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return format(value, fmt)


def _base(value: str, source: str = "") -> str:
    """The baseline's figure, under the compressed model's, in small print."""
    return f"<br><span class=note>{_e(value)}{' ' + _e(source) if source else ''}</span>"


def _group(row: dict[str, Any]) -> str:
    """``g:2 (3/5)`` for a run of a --repeat group, empty for a lone run."""
    group = (row.get("record") or {}).get("group") or {}
    return f"g:{group['id']} ({group.get('index')}/{group.get('of')})" if group.get("id") is not None else ""


def _thermal(record: dict[str, Any]) -> str:
    """Throttled / not throttled, or unknown with the agent's reason (boards without a throttling source)."""
    flag = record.get("throttled")
    if flag is True:
        return "<span class=bad>throttled</span>"
    if flag is False:
        return "not throttled"
    reason = (record.get("thermal") or {}).get("throttle_reason") or "not recorded"
    return f"<span title='{_e(reason)}'>unknown*</span>"


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1280px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; margin: 0.4em 0; }
.meta { color: #666; } table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
td.l { white-space: normal; min-width: 6em; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; } figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #eee; } figcaption { color: #555; font-size: 13px; }
.wide { overflow-x: auto; } .good { color: #17803d; } .bad { color: #b3261e; } .note { color: #666; font-size: 12px; }
td.good, td.bad { font-weight: 600; } .legend { font-size: 12px; color: #555; }
td.recipe { min-width: 11em; } td.caveat { white-space: normal; font-size: 12px; }
td.note-cell { min-width: 14em; white-space: normal; font-size: 12px; }
@media (max-width: 760px) {
  body { margin: 1em auto; padding: 0 0.6em; }
  /* On a phone a plot scaled to the screen is too small to read: keep it legible and let it scroll sideways. */
  figure .wide img { max-width: none; width: 720px; }
}
"""


def _headline(merit: Merit, value: float | None) -> str:
    """A merit's headline figure, named when it is not accuracy (fractions are the figures whose diff is in pp)."""
    return _e(format_headline(value, merit.accuracy_metric, merit.accuracy_diff_unit == "pp", named=True))


def _budget_class(check: Check | None) -> str:
    """The only colours a figure gets from a budget: within its limit, over it, or none (unknown, no limit)."""
    if check is None or check.status == "unknown":
        return ""
    return "good" if check.status == "pass" else "bad"


def _verdict_class(merit: Any) -> str:
    """A latency change is coloured only when `results compare` calls it significant."""
    if not merit.latency_significant or merit.efficiency_improvement is None:
        return ""
    return "good" if merit.efficiency_improvement > 0 else "bad"


@dataclass
class Report:
    data: ReportData
    plots: list[Plot]
    created_at: str
    budget: BudgetReport | None = None
    budget_path: str | None = None
    searches: list[Any] = field(default_factory=list)  # report.search.StudySection, one per study
    searches_note: str | None = None

    def _check(self, sha256: str, target: str | None, metric: str) -> Check | None:
        if self.budget is None or target is None:
            return None
        return next((c for c in self.budget.checks if (c.sha256, c.target, c.metric) == (sha256, target, metric)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "store": self.data.store,
            "runs": [{k: v for k, v in r.items() if k != "record"} for r in self.data.runs],
            "figures_of_merit": [m.to_dict() for m in self.data.merits],
            "plots": [{"name": p.name, "title": p.title, "png_bytes": len(p.png)} for p in self.plots],
            "energy_unavailable": self.data.energy_reasons,
            "budget": None if self.budget is None else {"file": self.budget_path, **self.budget.to_dict()},
            "searches": [s.to_dict() for s in self.searches],
        }

    def write_pngs(self, folder: str | Path) -> list[Path]:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for plot in self.plots:
            path = out / f"{plot.name}.png"
            path.write_bytes(plot.png)
            written.append(path)
        return written

    def summary(self) -> str:
        lines = [
            f"{len(self.data.runs)} model/target pairs from {self.data.total_runs} profile runs, "
            f"{len(self.data.merits)} compressed model(s) with figures of merit, {len(self.plots)} plots"
        ]
        if self.data.merits:
            lines.append("")
            lines.append(
                _table.table(
                    ["model", "target", "ratio", "gzip ratio", "accuracy Δ", "median latency", "inferences/s"],
                    [
                        [
                            labels(self.data).get(m.model_sha256) or m.model + (f" ({m.recipe})" if m.recipe else ""),
                            m.target or "-",
                            _num(m.compression_ratio, ".2f") + "x",
                            _num(m.gzip_compression_ratio, ".2f") + "x",
                            _num(m.accuracy_diff_pp, "+.1f") + " pp",
                            _efficiency_text(m),
                            _num(m.throughput_ips, ",.0f"),
                        ]
                        for m in self.data.merits
                    ],
                    align="llrrrlr",
                )
            )
        if self.budget is not None:
            lines += ["", f"budget {self.budget_path}:", self.budget.summary()]
        return "\n".join(lines)

    # -- HTML -----------------------------------------------------------------------------------------------------

    def _runs_table(self) -> str:
        """One row a run. The conditions share a cell (runtime, threads, delegate), the group column is left out when
        no run has one, and a run's caveats take a full-width line under it, so that the table fits a 1366 px
        laptop screen."""
        names = labels(self.data)
        runs = self.data.runs
        any_energy = any(energy_mj(r["record"]) is not None for r in runs)
        any_group = any(_group(r) for r in runs)
        head = (
            "<tr><th>run</th><th class=l>model</th><th class=l>target</th>"
            "<th class=l>runtime<br><span class=note>threads · delegate</span></th>"
            "<th>runs</th><th>median ms</th><th>p90 ms</th><th>p99 ms</th><th>std ms</th><th>peak RSS</th>"
            + ("<th>energy mJ<br><span class=note>± 95 % (meter)</span></th>" if any_energy else "")
            + "<th class=l>thermal</th>"
            + ("<th class=l>group</th>" if any_group else "")
            + "<th class=l>when (UTC)</th></tr>"
        )
        body = []
        for r in runs:
            rec = r["record"]

            def td(metric: str, text: str, r: dict[str, Any] = r) -> str:
                cls = _budget_class(self._check(r["model_sha256"], r["target"], metric))
                return f"<td class='{cls}'>{text}</td>" if cls else f"<td>{text}</td>"

            threads = r["threads"] or "default"
            when = r["created_at"][:19].split("T")
            body.append(
                "<tr>"
                f"<td>#{r['id']}</td><td class=l>{_e(names.get(r['model_sha256'], r['model_name']))}</td>"
                f"<td class=l>{_e(r['target'])}</td>"
                f"<td class=l>{_e(r['runtime'])} {_e(r['runtime_version'])}<br>"
                f"<span class=note>{_e(threads)} thread{'s' * (threads != 1)} · {_e(r['delegate'])}</span></td>"
                f"<td>{r['runs']}</td>"
                + td("median_ms", _table.ms(r["median_ms"]))
                + td("p90_ms", _table.ms(r["p90_ms"]))
                + td("p99_ms", _table.ms(r["p99_ms"]))
                + f"<td>{_table.ms(r['std_ms'])}</td>"
                + td("peak_memory_mib", _table.size(r["peak_rss_kb"] * 1024 if r["peak_rss_kb"] else None))
                + (td("energy_mj", _e(energy_cell(load(rec)))) if any_energy else "")
                + f"<td class=l>{_thermal(rec)}</td>"
                + (f"<td class=l>{_e(_group(r))}</td>" if any_group else "")
                + f"<td class=l>{'<br>'.join(_e(part) for part in when)}</td></tr>"
            )
            if r.get("caveats"):  # under the run, across the figures it qualifies
                span = 11 + any_energy + any_group
                body.append(f"<tr><td></td><td class='l caveat bad' colspan={span}>⚠ {_e(r['caveats'])}</td></tr>")
        unknown = sorted(
            {
                f"{r['target']}: {(r['record'].get('thermal') or {}).get('throttle_reason') or 'not recorded'}"
                for r in runs
                if r["record"].get("throttled") is None
            }
        )
        notes = "<p class=note>* throttling unknown: " + "; ".join(_e(u) for u in unknown) + "</p>" if unknown else ""
        return f"<div class=wide><table id=runs>{head}{''.join(body)}</table></div>{notes}"

    def _merit_table(self) -> str:
        if not self.data.merits:
            return (
                "<p class=note>No compressed model in the store: run <code>edgeprof compress</code> (or "
                "<code>edgeprof demo</code>) to see compression ratios and accuracy changes.</p>"
            )
        names = labels(self.data)
        any_energy = any(m.energy_mj is not None or m.baseline_energy_mj is not None for m in self.data.merits)
        head = (
            "<tr><th class=l>compressed model<br><span class=note>recipe, file, sha256</span></th>"
            "<th class=l>target</th>"
            "<th>compression<br>ratio<br><span class=note>file / gzip</span></th>"
            "<th>accuracy<br><span class=note>baseline</span></th><th>accuracy Δ<br>"
            "<span class=note>same test set</span></th>"
            "<th>median ms<br><span class=note>baseline</span></th><th>efficiency<br>improvement<br>"
            "<span class=note>of the median</span></th>"
            "<th>throughput<br>inferences/s<br><span class=note>at the median<br>baseline</span></th>"
            "<th>space<br>efficiency<br><span class=note>gzip KiB<br>per acc. %</span></th>"
            + ("<th>energy mJ<br><span class=note>baseline</span></th>" if any_energy else "")
            + "<th class=l>note</th></tr>"
        )
        body = []
        for m in self.data.merits:
            eff = None if m.efficiency_improvement is None else 100 * m.efficiency_improvement
            acc_cls = _budget_class(self._check(m.model_sha256, m.target, "accuracy_drop_pp"))
            gzip_cls = _budget_class(self._check(m.model_sha256, m.target, "gzip_kib"))
            interval = (
                f"<br><span class=note>95 % interval {100 * m.efficiency_interval[0]:+.1f} .. "
                f"{100 * m.efficiency_interval[1]:+.1f} %</span>"
                if m.efficiency_interval is not None
                else ""
            )
            samples = f"<br><span class=note>on {m.test_samples} samples</span>" if m.test_samples else ""
            body.append(
                "<tr>"
                f"<td class='l recipe'>{_e(m.recipe)}<br><span class=note>{_e(names.get(m.model_sha256, m.model))} "
                f"{_e(m.model_sha256[:12])}</span></td><td class=l>{_e(m.target)}</td>"
                f"<td class='{gzip_cls}' data-figure=compression_ratio>{_num(m.compression_ratio, '.2f')}x / "
                f"{_num(m.gzip_compression_ratio, '.2f')}x</td>"
                f"<td>{_headline(m, m.accuracy)}"
                f"{_base(_headline(m, m.baseline_accuracy), m.baseline_accuracy_from)}</td>"
                f"<td class='{acc_cls}' data-figure=accuracy_diff_pp>{_num(m.accuracy_diff_pp, '+.2f')} "
                f"{_e(m.accuracy_diff_unit)}"
                f"{samples}</td>"
                f"<td>{_table.ms(m.median_ms)}{_base(_table.ms(m.baseline_median_ms))}</td>"
                f"<td class='{_verdict_class(m)}' data-figure=efficiency_improvement>{_num(eff, '+.1f')} %{interval}"
                + (f"<br><span class=note>{_e(m.latency_verdict)}</span>" if m.latency_verdict else "")
                + "</td>"
                f"<td data-figure=throughput_ips>{_num(m.throughput_ips, ',.0f')}"
                f"{_base(_num(m.baseline_throughput_ips, ',.0f'))}</td>"
                f"<td>{_num(m.space_efficiency, '.3f')}{_base(_num(m.baseline_space_efficiency, '.3f'))}</td>"
                + (
                    f"<td>{_num(m.energy_mj, '.3f')}{_base(_num(m.baseline_energy_mj, '.3f'))}</td>"
                    if any_energy
                    else ""
                )
                + f"<td class='l note-cell'>{_e(m.note)}</td></tr>"
            )
        colours = (
            f"Green and red cells: within or over a limit of the budget <code>{_e(self.budget_path)}</code>, and a "
            "latency change that <code>edgeprof results compare</code> finds significant."
            if self.budget is not None
            else "Colour marks only a latency change that <code>edgeprof results compare</code> finds significant "
            "(green faster, red slower); accuracy and size are not judged without a budget "
            "(<code>edgeprof report --budget FILE</code>)."
        )
        return (
            f"<div class=wide><table id=merit>{head}{''.join(body)}</table></div>"
            f"<p class=legend>{colours}</p>"
            "<p class=note>Baseline: the float32 TFLite export of the same source model (the compression run with "
            "an empty recipe and the same source hash), evaluated on the same test set (otherwise the accuracy is "
            "compared with the Keras source, which the compression run evaluated on its own test set, and the note "
            "says why), profiled on the same target, preferring the same runtime, delegate and threads. Compression "
            "ratio: baseline bytes over compressed bytes. Accuracy Δ: compressed minus baseline, in percentage "
            "points. Efficiency improvement: (median before − median after) / median before, with the 95 % "
            "bootstrap interval and the verdict of <code>edgeprof results compare</code> on the two runs (is the "
            "change beyond run-to-run noise?). Throughput: 1000 / median latency in ms, inferences per second back "
            "to back; every latency figure of a row comes from the median, so they never disagree. Space "
            "efficiency: gzip size in KiB per accuracy percent (lower is better).</p>"
        )

    def _budget_section(self) -> str:
        if self.budget is None:
            return ""
        names = labels(self.data)

        def figure(value: float | None, metric: Any) -> str:
            if value is None:
                return "-"
            return f"{_table.ms(value) if metric.unit == 'ms' else format(value, metric.fmt)} {metric.unit}"

        rows = []
        for c in self.budget.checks:
            metric = METRICS[c.metric]
            cls = _budget_class(c)
            rows.append(
                f"<tr><td class=l>{_e(names.get(c.sha256, c.model))} <span class=note>{_e(c.sha256[:12])}</span></td>"
                f"<td class=l>{_e(c.target)}</td><td class=l>{_e(metric.label)}</td>"
                f"<td>{_e(figure(c.value, metric))}</td><td>≤ {_e(figure(c.limit, metric))}</td>"
                f"<td class='l {cls}'>{_e(c.status)}</td><td class=l>{_e(c.reason)}</td></tr>"
            )
        verdict = (
            "every limit is met"
            if self.budget.passed
            else f"{len(self.budget.breaches)} of {len(self.budget.checks)} checks over budget"
        )
        unknown = sum(c.status == "unknown" for c in self.budget.checks)
        return (
            f"<h2>Budget</h2><p class=meta><code>{_e(self.budget_path)}</code>: {_e(verdict)}"
            + (f"; {unknown} figure(s) unknown" if unknown else "")
            + "</p><div class=wide><table id=budget><tr><th class=l>model</th><th class=l>target</th>"
            "<th class=l>metric</th><th>value</th><th>limit</th><th class=l>status</th><th class=l>note</th></tr>"
            + "".join(rows)
            + "</table></div>"
        )

    def _models_table(self) -> str:
        names = labels(self.data)
        head = (
            "<tr><th class=l>model</th><th class=l>sha256</th><th>size</th><th>gzip</th><th>accuracy</th>"
            "<th>MACs</th><th>arena estimate</th><th>weight sparsity</th></tr>"
        )
        body = []
        for sha, f in sorted(self.data.models.items(), key=lambda kv: names.get(kv[0], "")):
            insp = f.inspection or {}
            arena = (insp.get("arena") or {}).get("bytes")
            sparsity = (insp.get("weights") or {}).get("sparsity")
            body.append(
                f"<tr><td class=l>{_e(names.get(sha, f.name))}</td><td class=l>{_e(sha[:12])}</td>"
                f"<td>{_table.size(f.size_bytes)}</td><td>{_table.size(f.gzip_bytes)}</td>"
                f"<td>{_e(f.accuracy_text)}</td><td>{_num(insp.get('macs_total'), ',')}</td>"
                f"<td>{_table.size(arena)}</td><td>{_table.pct(sparsity)}</td></tr>"
            )
        return f"<div class=wide><table id=models>{head}{''.join(body)}</table></div>"

    def _figure(self, plot: Plot) -> str:
        encoded = base64.b64encode(plot.png).decode("ascii")
        return (
            f"<figure id='fig-{_e(plot.name)}'><h3>{_e(plot.title)}</h3>"
            f"<div class=wide><img alt='{_e(plot.title)}' src='data:image/png;base64,{encoded}'></div>"
            f"<figcaption>{_e(plot.caption)}</figcaption></figure>"
        )

    def html(self) -> str:
        plots = {p.name: p for p in self.plots}
        sections = [
            self._budget_section(),
            "<h2>Runs</h2><p class=meta>The newest profile run of each model on each target.</p>",
            self._runs_table(),
        ]
        if "latency" in plots:
            sections.append(self._figure(plots["latency"]))
        sections.append("<h2>Compressed models against their baselines</h2>")
        sections.append(self._merit_table())
        for name in ("accuracy_vs_p90", "accuracy_vs_size"):
            if name in plots:
                sections.append(self._figure(plots[name]))
        from .search import html_section

        sections.append(html_section(self.searches, self.searches_note, self._figure))
        sections.append("<h2>Models</h2>")
        sections.append(self._models_table())
        for plot in self.plots:
            if plot.name.startswith("size_per_layer_"):
                sections.append(self._figure(plot))
        operators = [p for p in self.plots if p.name.startswith(("ops_", "roofline_"))]
        if operators:
            sections.append("<h2>Operators</h2><p class=meta>Runs profiled with --ops: where the time goes.</p>")
            sections.extend(self._figure(plot) for plot in operators)
        scans = [plot for plot in self.plots if plot.name.startswith("sensitivity-")]
        if scans:
            sections.append("<h2>Sensitivity</h2>")
            sections += [self._figure(plot) for plot in scans]
        sections.append("<h2>Energy</h2>")
        if "energy" in plots:
            sections.append(self._figure(plots["energy"]))
        else:
            reasons = "".join(
                f"<li>{_e(target)}: {_e(reason)}</li>" for target, reason in sorted(self.data.energy_reasons.items())
            )
            sections.append(f"<p>No run measured energy per inference.</p><ul>{reasons}</ul>")
        return (
            "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>edgeprof report</title><style>{CSS}</style></head><body>"
            f"<h1>edgeprof report</h1><p class=meta>{_e(self.data.store)} · {len(self.data.runs)} model/target "
            f"pairs from {self.data.total_runs} profile runs · generated {_e(self.created_at)} UTC by edgeprof "
            f"{_e(__version__)}</p>{''.join(sections)}</body></html>\n"
        )


def build_report(
    store: Store,
    *,
    model: str | None = None,
    target: str | None = None,
    since: str | None = None,
    budget: Budget | str | Path | None = None,
    progress: Progress | None = None,
    sensitivity: Sequence[str | Path | dict[str, Any]] = (),
) -> Report:
    """Gather the store's runs (filtered like ``edgeprof results list``) and draw the report's plots.

    With ``budget`` (a :class:`~edgeprof.budget.Budget` or a budget file), the figures it limits are coloured by
    whether they meet it, and the page starts with the budget's checks. ``sensitivity``: scans written by
    ``edgeprof sensitivity``, each drawn as a heat map of layers × compression."""
    from .search import sections
    from .sensitivity import heatmap, load

    data = collect(store, model=model, target=target, since=since)
    plots = all_plots(data, progress)
    plots += [heatmap(load(scan), f"sensitivity-{i + 1}") for i, scan in enumerate(sensitivity)]
    searches, searches_note = sections(store)
    plots += [plot for section in searches for plot in section.plots]
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")[:19].replace("T", " ")
    checked, path = None, None
    if budget is not None:
        path = "budget" if isinstance(budget, Budget) else str(budget)
        budget = budget if isinstance(budget, Budget) else Budget.from_file(budget)
        checked = check_store(budget, store, model=model, target=target, since=since)
    return Report(data, plots, created, checked, path, searches, searches_note)


def _efficiency_text(merit: Any) -> str:
    """``0.00448 -> 0.00189 ms: 2.37x faster`` (or "no significant change"): the figure and its verdict together."""
    if merit.median_ms is None or merit.baseline_median_ms is None:
        return "not measured"
    verdict = merit.latency_verdict or "no verdict"
    return f"{_table.ms(merit.baseline_median_ms)} -> {_table.ms(merit.median_ms)} ms: {verdict}"


__all__ = ["Report", "ReportData", "build_report"]
