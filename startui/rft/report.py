"""``python -m startui report RUN --html OUT``: one self-contained HTML page per set of runs.

The page embeds plotly.js once, in its head (no CDN: the page opens offline and survives being
mailed around), and shows the analytics figures with the tables behind them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from startui.rft.analytics import Facts, category_table, figures, mode_table, scaling_curve

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


def render_html(data: Sequence[Facts], runs: Sequence[str], *, title: str | None = None) -> str:
    from plotly.offline import get_plotlyjs

    fig_html = {name: fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{name}")
                for name, fig in figures(data).items()}
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
</body></html>
"""


def write_report(data: Sequence[Facts], runs: Sequence[str], out: str | Path) -> Path:
    out = Path(out)
    if out.is_dir():
        out = out / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(data, runs), encoding="utf-8")
    return out
