"""One self-contained HTML report of what the store holds: plots (matplotlib, inlined as base64 PNG) and tables.

report = build_report(open_store())
Path("report.html").write_text(report.html())

The page has no external resource (no script, font or stylesheet to fetch), so it can be mailed, archived as a CI
artefact, or opened on a machine without network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _table
from .._version import __version__
from ..store import Store
from ..store.sql import energy_mj
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
.meta { color: #666; } table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
td.l { white-space: normal; min-width: 6em; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; } figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #eee; } figcaption { color: #555; font-size: 13px; }
.wide { overflow-x: auto; } .good { color: #17803d; } .bad { color: #b3261e; } .note { color: #666; font-size: 12px; }
"""


@dataclass
class Report:
    data: ReportData
    plots: list[Plot]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "store": self.data.store,
            "runs": [{k: v for k, v in r.items() if k != "record"} for r in self.data.runs],
            "figures_of_merit": [m.to_dict() for m in self.data.merits],
            "plots": [{"name": p.name, "title": p.title, "png_bytes": len(p.png)} for p in self.plots],
            "energy_unavailable": self.data.energy_reasons,
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
                    ["model", "target", "ratio", "gzip ratio", "accuracy Δ", "efficiency", "inferences/s"],
                    [
                        [
                            m.model + (f" ({m.recipe})" if m.recipe else ""),
                            m.target or "-",
                            _num(m.compression_ratio, ".2f") + "x",
                            _num(m.gzip_compression_ratio, ".2f") + "x",
                            _num(m.accuracy_diff_pp, "+.1f") + " pp",
                            _num(None if m.efficiency_improvement is None else 100 * m.efficiency_improvement, "+.1f")
                            + " %",
                            _num(m.throughput_ips, ",.0f"),
                        ]
                        for m in self.data.merits
                    ],
                    align="llrrrrr",
                )
            )
        return "\n".join(lines)

    # -- HTML -----------------------------------------------------------------------------------------------------

    def _runs_table(self) -> str:
        names = labels(self.data)
        any_energy = any(energy_mj(r["record"]) is not None for r in self.data.runs)
        head = (
            "<tr><th>run</th><th class=l>model</th><th class=l>target</th><th class=l>runtime</th><th>threads</th>"
            "<th class=l>delegate</th><th>runs</th><th>median ms</th><th>p90 ms</th><th>p99 ms</th><th>std ms</th>"
            "<th>peak RSS</th>"
            + ("<th>energy mJ</th>" if any_energy else "")
            + "<th class=l>thermal</th><th class=l>when (UTC)</th></tr>"
        )
        body = []
        for r in self.data.runs:
            rec = r["record"]
            energy = energy_mj(rec)
            body.append(
                "<tr>"
                f"<td>#{r['id']}</td><td class=l>{_e(names.get(r['model_sha256'], r['model_name']))}</td>"
                f"<td class=l>{_e(r['target'])}</td><td class=l>{_e(r['runtime'])} {_e(r['runtime_version'])}</td>"
                f"<td>{_e(r['threads'] or 'default')}</td><td class=l>{_e(r['delegate'])}</td><td>{r['runs']}</td>"
                f"<td>{_table.ms(r['median_ms'])}</td><td>{_table.ms(r['p90_ms'])}</td>"
                f"<td>{_table.ms(r['p99_ms'])}</td><td>{_table.ms(r['std_ms'])}</td>"
                f"<td>{_table.size(r['peak_rss_kb'] * 1024 if r['peak_rss_kb'] else None)}</td>"
                + (f"<td>{_num(energy, '.3f')}</td>" if any_energy else "")
                + f"<td class=l>{_thermal(rec)}</td>"
                f"<td class=l>{_e(r['created_at'][:19].replace('T', ' '))}</td></tr>"
            )
        unknown = sorted(
            {
                f"{r['target']}: {(r['record'].get('thermal') or {}).get('throttle_reason') or 'not recorded'}"
                for r in self.data.runs
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
        any_energy = any(m.energy_mj is not None or m.baseline_energy_mj is not None for m in self.data.merits)
        head = (
            "<tr><th class=l>compressed model</th><th class=l>recipe</th><th class=l>target</th>"
            "<th>compression<br>ratio<br><span class=note>file / gzip</span></th>"
            "<th>accuracy<br><span class=note>baseline</span></th><th>accuracy Δ</th>"
            "<th>median ms<br><span class=note>baseline</span></th><th>efficiency<br>improvement</th>"
            "<th>throughput<br>inferences/s<br><span class=note>baseline</span></th>"
            "<th>space<br>efficiency<br><span class=note>gzip KiB<br>per acc. %</span></th>"
            + ("<th>energy mJ<br><span class=note>baseline</span></th>" if any_energy else "")
            + "<th class=l>note</th></tr>"
        )
        body = []
        for m in self.data.merits:
            eff = None if m.efficiency_improvement is None else 100 * m.efficiency_improvement
            cls = "" if eff is None else ("good" if eff > 0 else "bad")
            acc_cls = "" if m.accuracy_diff_pp is None else ("bad" if m.accuracy_diff_pp < -1 else "good")
            body.append(
                "<tr>"
                f"<td class=l>{_e(m.model)} <span class=note>{_e(m.model_sha256[:12])}</span></td>"
                f"<td class=l>{_e(m.recipe)}</td><td class=l>{_e(m.target)}</td>"
                f"<td>{_num(m.compression_ratio, '.2f')}x / {_num(m.gzip_compression_ratio, '.2f')}x</td>"
                f"<td>{_table.pct(m.accuracy)}{_base(_table.pct(m.baseline_accuracy), m.baseline_accuracy_from)}</td>"
                f"<td class='{acc_cls}'>{_num(m.accuracy_diff_pp, '+.2f')} pp</td>"
                f"<td>{_table.ms(m.median_ms)}{_base(_table.ms(m.baseline_median_ms))}</td>"
                f"<td class='{cls}'>{_num(eff, '+.1f')} %"
                + (f"<br><span class=note>{_e(m.latency_verdict)}</span>" if m.latency_verdict else "")
                + "</td>"
                f"<td>{_num(m.throughput_ips, ',.0f')}{_base(_num(m.baseline_throughput_ips, ',.0f'))}</td>"
                f"<td>{_num(m.space_efficiency, '.3f')}{_base(_num(m.baseline_space_efficiency, '.3f'))}</td>"
                + (
                    f"<td>{_num(m.energy_mj, '.3f')}{_base(_num(m.baseline_energy_mj, '.3f'))}</td>"
                    if any_energy
                    else ""
                )
                + f"<td class=l>{_e(m.note)}</td></tr>"
            )
        return (
            f"<div class=wide><table id=merit>{head}{''.join(body)}</table></div>"
            "<p class=note>Baseline: the float32 TFLite export of the same source model (the compression run with "
            "an empty recipe and the same source hash), profiled on the same target, preferring the same runtime, "
            "delegate and threads. Compression ratio: baseline bytes over compressed bytes. Accuracy Δ: compressed "
            "minus baseline, in percentage points. Efficiency improvement: (median before − median after) / median "
            "before, with the verdict of <code>edgeprof results compare</code> on the two runs (is the change beyond "
            "run-to-run noise?). Throughput: 1000 / mean latency in ms, inferences per second back to back. "
            "Space efficiency: gzip size in KiB per accuracy percent (lower is better).</p>"
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
                f"<td>{_table.pct(f.accuracy)}</td><td>{_num(insp.get('macs_total'), ',')}</td>"
                f"<td>{_table.size(arena)}</td><td>{_table.pct(sparsity)}</td></tr>"
            )
        return f"<div class=wide><table id=models>{head}{''.join(body)}</table></div>"

    def _figure(self, plot: Plot) -> str:
        encoded = base64.b64encode(plot.png).decode("ascii")
        return (
            f"<figure id='fig-{_e(plot.name)}'><h3>{_e(plot.title)}</h3>"
            f"<img alt='{_e(plot.title)}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{_e(plot.caption)}</figcaption></figure>"
        )

    def html(self) -> str:
        plots = {p.name: p for p in self.plots}
        sections = [
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
        sections.append("<h2>Models</h2>")
        sections.append(self._models_table())
        for plot in self.plots:
            if plot.name.startswith("size_per_layer_"):
                sections.append(self._figure(plot))
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
    progress: Progress | None = None,
) -> Report:
    """Gather the store's runs (filtered like ``edgeprof results list``) and draw the report's plots."""
    data = collect(store, model=model, target=target, since=since)
    plots = all_plots(data, progress)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")[:19].replace("T", " ")
    return Report(data, plots, created)


__all__ = ["Report", "ReportData", "build_report"]
