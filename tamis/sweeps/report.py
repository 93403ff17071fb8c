"""The self-contained HTML report of a sweep: the versions, the summary table, the plots
(`figures.py`; PNG files written beside `result.json`, the HTML embeds the same images) and
every cell."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from tamis import htmlreport
from tamis.sweeps.documents import SweepResult
from tamis.sweeps.figures import curves_figure, delta_figure, tradeoff_figure


def _save(fig: Any, path: Path) -> str:
    """Write the PNG once and embed the same bytes in the HTML."""
    import base64

    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"/>'


#: the report's tables fit the page: they take at most its width and wrap long cells
TABLE_CSS = (
    "<style>.tablewrap{max-width:100%;overflow-x:auto}"
    "table.sweep{max-width:100%;width:100%;table-layout:auto;font-size:.85rem}"
    "table.sweep td,table.sweep th{white-space:normal;padding:.2rem .45rem}"
    "table.sweep td.n{white-space:nowrap}"
    "table.sweep th.l{text-align:left}"
    "table.sweep td.l{text-align:left;overflow-wrap:anywhere}</style>"
)


def sweep_table(rows: list[dict[str, str]], columns: list[str]) -> str:
    """A table of pre-formatted strings; numbers right-aligned. Missing values are shown as a
    dash, never as `None`."""
    from tamis.sweeps.table import DASH

    if not rows:
        return '<p class="note">(no rows)</p>'
    left = {"version", "metric", "steps", "class balance", "rows", "null labels dropped", "method"}
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(c)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            text = DASH if v is None or v == "" else str(v)
            # text wraps anywhere; numbers never break, a CI only at its space
            cls = ' class="l"' if c in left else ("" if " " in text else ' class="n"')
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="tablewrap"><table class="sweep"><tr>{head}</tr>{"".join(body)}</table></div>'
    )


def summary_rows(result: SweepResult) -> list[dict[str, str]]:
    from tamis.sweeps.table import DASH, fmt, fmt_ci, fmt_p

    out = []
    for r in result["table"]:
        delta = r.get("delta")
        out.append(
            {
                "version": r["version"],
                "metric": r["metric"],
                "seeds": fmt(r.get("n")),
                "mean": fmt(r.get("mean")),
                "sd (seeds)": fmt(r.get("sd")),
                "95% CI": fmt_ci(r.get("ci_low"), r.get("ci_high"), 4),
                "delta": DASH if delta is None else f"{delta:+.4f}",
                "delta 95% CI": fmt_ci(r.get("delta_ci_low"), r.get("delta_ci_high"), 4, True),
                "p": fmt_p(r.get("p")),
                "method": "rows+seeds"
                if str(r.get("ci_method", "")).startswith("bootstrap")
                else "t (seeds)",
            }
        )
    return out


def _test_note(result: SweepResult) -> str:
    from tamis.sweeps.table import balance_text

    test = result.get("test")
    if not test:
        return ""
    nulls = test.get("null_labels_dropped") or 0
    dropped = f"; {nulls:,} rows with a null label dropped" if nulls else ""
    return (
        f'<p class="note">test set (every cell): {test["rows"]:,} rows, class balance '
        f"{html.escape(balance_text(test))}{dropped}.</p>"
    )


def write_report(result: SweepResult, out_dir: Path) -> dict[str, Any]:
    """Write PNG plots and `report.html` into out_dir; returns their paths."""
    from tamis.sweeps.table import fmt, version_rows

    plots: dict[str, str] = {}
    sections: list[tuple[str, str]] = []
    base = html.escape(str(result["baseline"]))
    sections.append(
        (
            "Versions",
            TABLE_CSS
            + sweep_table(
                version_rows(result),
                ["version", "rows", "class balance", "null labels dropped", "steps"],
            )
            + '<p class="note">rows and class balance of the training data each version gives '
            "the recipe (summed over seeds; rows with a null label are dropped and counted); "
            "steps: the chain that made it, from the store's lineage.</p>" + _test_note(result),
        )
    )
    for w in result.get("warnings") or []:
        sections[-1] = (sections[-1][0], sections[-1][1] + f'<p class="fail">{html.escape(w)}</p>')
    summary_cols = [
        "version",
        "metric",
        "seeds",
        "mean",
        "sd (seeds)",
        "95% CI",
        "delta",
        "delta 95% CI",
        "p",
        "method",
    ]
    sections.append(
        (
            "Summary",
            sweep_table(summary_rows(result), summary_cols)
            + '<p class="note">rows+seeds: 95% CIs from a paired bootstrap that resamples the '
            f"test rows and the seeds together ({fmt(result.get('n_boot'))} replicates; every "
            "version scored on the same resampled rows); delta = version - "
            f"{base}, computed inside each replicate, with its percentile CI and two-sided "
            "bootstrap p-value. A deterministic model still has a CI: the test set is a sample. "
            "Threshold-free AUC and average precision stand beside F1: a change of threshold or "
            "class prior moves F1 without making a better model. t (seeds): figures without "
            "per-row predictions, Student-t over seeds.</p>",
        )
    )
    for kind, maker in (
        ("metrics", delta_figure),
        ("tradeoff", tradeoff_figure),
        ("curves", curves_figure),
    ):
        fig = maker(result)
        if fig is None:
            continue
        path = out_dir / f"{kind}.png"
        tag = _save(fig, path)
        plots[kind] = str(path)
        title = {
            "metrics": f"Paired deltas against {base}",
            "tradeoff": "Utility-privacy trade-off",
            "curves": "Learning curves",
        }[kind]
        sections.append((title, tag))
    named = [m for m in result["metrics"] if any(m in c["metrics"] for c in result["cells"])]
    metric_names = named + sorted({k for c in result["cells"] for k in c["metrics"]} - set(named))
    cells = [
        {
            "version": str(c["version"]),
            "seed": str(c["seed"]),
            **{m: fmt(c["metrics"].get(m)) for m in metric_names},
            "seconds": fmt(c.get("seconds"), 2),
            "data_id": str(c["data_id"])[:12],
        }
        for c in result["cells"]
    ]
    sections.append(
        ("Cells", sweep_table(cells, ["version", "seed", *metric_names, "seconds", "data_id"]))
    )
    page = htmlreport.page(
        f"Sweep {result['name']}",
        sections,
        subtitle=(f"{result['description']} - " if result.get("description") else "")
        + f"recipe {result['recipe']['use']}, seeds {result['seeds']}, "
        f"sweep id {result['sweep_id']}",
    )
    html_path = out_dir / "report.html"
    html_path.write_text(page)
    return {"html": str(html_path), "plots": plots}
