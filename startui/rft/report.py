"""``python -m startui report RUN --html OUT``: one self-contained HTML page per set of runs.

The page embeds plotly.js once, in its head (no CDN: the page opens offline and survives being
mailed around), and shows the analytics figures with the tables behind them. Given a
:class:`~startui.rft.dashboard.Dashboard` it shows every figure of the app's Dataset tab, drawn
by the same functions (:func:`startui.rft.dashboard.figures`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from startui.rft import dashboard as dash
from startui.rft.analytics import (
    Facts,
    category_table,
    figures,
    length_table,
    mode_table,
    scaling_curve,
    source_table,
)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f8fa}
.note{color:#656d76;font-size:.85rem}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return '<p class="note">No data.</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _team(d: dash.Dashboard | None, figs: dict[str, str]) -> tuple[str, str]:
    """The funnel (first) and the people (last) sections, when there is a dashboard."""
    if d is None:
        return "", ""
    funnel = f"""<h2>From generated to exported</h2>
<p class="note">"Selected for export": what the export's selection (D_START by default) keeps.</p>
{figs["funnel"]}
{_table(dash.funnel_table(d.funnel), ["stage", "trajectories", "share"])}"""
    people = f"""<h2>Review throughput</h2>
{figs["throughput"]}
{_table(dash.throughput_table(d.throughput), ["reviewer", "decisions", "days", "per_day"])}"""
    if d.agreement:
        people += f"""<h2>Agreement over time</h2>
{figs["agreement"]}
{_table(d.agreement, ["campaign", "day", "items", "agreement", "kappa", "alpha",
                      "score_alpha", "steps_alpha"])}"""
    return funnel, people


def render_html(data: Sequence[Facts], runs: Sequence[str], *, title: str | None = None,
                dashboard: dash.Dashboard | None = None) -> str:
    from plotly.offline import get_plotlyjs

    made = dash.figures(dashboard) if dashboard is not None else figures(data)
    fig_html = {name: fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{name}")
                for name, fig in made.items()}
    funnel, people = _team(dashboard, fig_html)
    title = title or "Hint-RFT report: " + ", ".join(runs)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_scored = sum(f.correct is not None for f in data)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">{len(data)} finished trajectories, {n_scored} with a rule score · generated
{when} by startui</p>
{funnel}
<h2>Greedy vs hinted accuracy</h2>
{_table(mode_table(data), ["run", "mode", "trajectories", "scored", "accuracy",
                           "tool_calls_mean", "hints_mean"])}
{fig_html["modes"]}
<h2>Sequential test-time scaling</h2>
<p class="note">Accuracy of the answer the model would have given after k end-of-reasoning hint
rounds (math problems with a reference answer).</p>
{fig_html["scaling"]}
{_table(scaling_curve(data), ["run", "rounds", "accuracy", "n"])}
<h2>Hint categories</h2>
{fig_html["categories"]}
{_table(category_table(data), ["category", "hints", "tool_use_rate", "error_free_rate",
                               "correct_rate", "trajectories", "scored"])}
<h2>Human vs automatic hints</h2>
{fig_html["sources"]}
{_table(source_table(data), ["name", "hints", "tool_use_rate", "error_free_rate",
                             "trajectories", "scored", "correct_rate"])}
<h2>Lengths</h2>
{fig_html["lengths"]}
{_table(length_table(data), ["mode", "verdict", "trajectories", "chars_median", "chars_max",
                             "tokens_mean", "tool_calls_mean"])}
{people}
</body></html>
"""


def write_report(data: Sequence[Facts], runs: Sequence[str], out: str | Path, *,
                 dashboard: dash.Dashboard | None = None) -> Path:
    out = Path(out)
    if out.is_dir():
        out = out / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(data, runs, dashboard=dashboard), encoding="utf-8")
    return out
