"""The backtest's files: values.parquet, allocations.parquet, PNG charts and report.html.

report.html is one self-contained file: the charts are embedded as base64 PNGs,
nothing is fetched from a network. Charts use matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from alchemiser.backtest.stats import drawdowns

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from alchemiser.backtest.command import Result

VALUE_TYPE = pl.Decimal(precision=24, scale=6)
VALUE_QUANTUM = Decimal("0.000001")
HOLDINGS_SHOWN = 10  # the largest holdings by average weight; the rest is "other"


def write_report(out: Path, results: Sequence[Result]) -> None:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # not its font-cache notices
    out.mkdir(parents=True, exist_ok=True)
    ran = [r for r in results if r.stats is not None]
    values_frame(ran).write_parquet(out / "values.parquet")
    allocations_frame([r for r in ran if r.file is not None]).write_parquet(
        out / "allocations.parquet"
    )
    charts = {"equity": _equity(ran), "drawdown": _drawdown(ran)}
    for r in ran:
        if r.file is not None:
            charts[f"holdings-{r.name}"] = _holdings(r)
    pngs = {name: _png(figure) for name, figure in charts.items()}
    for name, data in pngs.items():
        (out / f"{name}.png").write_bytes(data)
    (out / "report.html").write_text(_html(results, pngs), encoding="utf-8")


def values_frame(results: Sequence[Result]) -> pl.DataFrame:
    rows = [
        (d, r.name, v.quantize(VALUE_QUANTUM))
        for r in results
        for d, v in zip(r.run.dates, r.run.values, strict=True)
    ]
    return pl.DataFrame(
        rows,
        schema={"date": pl.Date, "strategy": pl.String, "value": VALUE_TYPE},
        orient="row",
    )


def allocations_frame(results: Sequence[Result]) -> pl.DataFrame:
    rows = [
        (d, r.name, symbol, weight)
        for r in results
        for d, decision in zip(r.run.dates, r.run.decisions, strict=True)
        for symbol, weight in decision.items()
    ]
    schema = {"date": pl.Date, "strategy": pl.String, "symbol": pl.String, "weight": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


# ---------------------------------------------------------------------- charts


def _x(dates: Sequence[date]) -> Any:
    """Dates as matplotlib takes them (its stubs do not list `date`)."""
    return list(dates)


def _equity(results: Sequence[Result]) -> Figure:
    figure, axes = plt.subplots(figsize=(11, 5))
    for r in results:
        axes.plot(_x(r.run.dates), [float(v) for v in r.run.values], label=r.name, linewidth=1)
    axes.set_yscale("log")
    axes.set_title("Value (log scale)")
    _legend(axes, len(results))
    return figure


def _drawdown(results: Sequence[Result]) -> Figure:
    figure, axes = plt.subplots(figsize=(11, 4))
    for r in results:
        falls = drawdowns([float(v) for v in r.run.values])
        axes.plot(_x(r.run.dates), [-100 * f for f in falls], label=r.name, linewidth=1)
    axes.set_title("Drawdown from the running peak (%)")
    _legend(axes, len(results))
    return figure


def _holdings(result: Result) -> Figure:
    decisions = result.run.decisions
    totals: dict[str, float] = {}
    for decision in decisions:
        for symbol, weight in decision.items():
            totals[symbol] = totals.get(symbol, 0.0) + weight
    shown = sorted(totals, key=lambda s: -totals[s])[:HOLDINGS_SHOWN]
    layers = [[d.get(s, 0.0) for d in decisions] for s in shown]
    labels = list(shown)
    if len(totals) > len(shown):
        layers.append([sum(w for s, w in d.items() if s not in shown) for d in decisions])
        labels.append("other")
    figure, axes = plt.subplots(figsize=(11, 3.5))
    axes.stackplot(_x(result.run.dates), layers, labels=labels, step="post")
    axes.set_ylim(0, 1)
    axes.set_title(f"{result.name}: holdings decided at each close")
    _legend(axes, len(labels))
    return figure


def _legend(axes: Axes, count: int) -> None:
    if count > 1:
        axes.legend(loc="upper left", fontsize="small", ncol=max(1, math.ceil(count / 12)))
    axes.grid(alpha=0.3)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


# ------------------------------------------------------------------------ html

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.error { color: #b00; text-align: left; }
img { max-width: 100%; }
"""


def _cell(x: float, pct: bool) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.1%}" if pct else f"{x:.2f}"


def _row(r: Result) -> str:
    s = r.stats
    name = html.escape(r.name)
    if s is None:
        error = html.escape(str(r.error))
        return f'<tr><td>{name}</td><td class="error" colspan="9">{error}</td></tr>'
    cells = [
        f"{float(s.final_value):,.2f}",
        _cell(s.cagr, True),
        _cell(s.volatility, True),
        _cell(s.sharpe, False),
        _cell(s.sortino, False),
        f"{_cell(s.max_drawdown, True)} ({s.drawdown_peak} → {s.drawdown_trough})",
        _cell(s.calmar, False),
        _cell(s.turnover, True),
        str(s.trades),
    ]
    return f"<tr><td>{name}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _img(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _html(results: Sequence[Result], pngs: dict[str, bytes]) -> str:
    heads = ["strategy", "final value", "CAGR", "volatility", "Sharpe", "Sortino"]
    heads += ["max drawdown (peak → trough)", "Calmar", "turnover/yr", "trades"]
    header = "".join(f"<th>{h}</th>" for h in heads)
    rows = "\n".join(_row(r) for r in results)
    holdings = "\n".join(
        f"<h3>{html.escape(name.removeprefix('holdings-'))}</h3>{_img(data, name)}"
        for name, data in pngs.items()
        if name.startswith("holdings-")
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Alchemiser backtest</title>
<style>{_STYLE}</style></head><body>
<h1>Backtest</h1>
<table><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
<h2>Value</h2>{_img(pngs["equity"], "equity curves")}
<h2>Drawdown</h2>{_img(pngs["drawdown"], "drawdowns")}
<h2>Holdings over time</h2>
{holdings}
</body></html>
"""
