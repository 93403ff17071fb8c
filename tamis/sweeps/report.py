"""Plots and the self-contained HTML report of a sweep.

- paired deltas (the main plot): per metric, each version's delta against the baseline with its
  95% CI (paired bootstrap over test rows and seeds) and a line at zero, so a reader sees at once
  whether an effect is larger than the test set's sampling noise; with no baseline to compare
  with, the means with their CIs on the metric's full range;
- learning curves (LM recipes): each version's curve, mean across seeds;
- utility-privacy trade-off (when the sweep names one): utility mean +- CI against the privacy
  figure mean +- CI, one point per version.
PNG files are written beside `result.json`; the HTML embeds the same images.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from tamis import htmlreport


def _rows(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [r for r in result["table"] if r["metric"] == metric and r.get("mean") is not None]


def _err(rows: list[dict[str, Any]]) -> list[list[float]]:
    lo = [r["mean"] - r["ci_low"] if r.get("ci_low") is not None else 0.0 for r in rows]
    hi = [r["ci_high"] - r["mean"] if r.get("ci_high") is not None else 0.0 for r in rows]
    return [lo, hi]


def _delta_rows(result: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [
        r
        for r in result["table"]
        if r["metric"] == metric
        and r.get("delta") is not None
        and r["version"] != result["baseline"]
    ]


def delta_figure(result: dict[str, Any]) -> Any:
    """Each version's paired delta vs the baseline with its 95% CI and a zero line, per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        m for m in [*result["metrics"], *result.get("figures", [])] if _delta_rows(result, m)
    ]
    if not metrics:
        return means_figure(result)
    ncols = min(3, len(metrics))
    nrows = (len(metrics) + ncols - 1) // ncols
    n_versions = max(len(_delta_rows(result, m)) for m in metrics)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, (1.2 + 0.45 * n_versions) * nrows + 0.6), squeeze=False
    )
    for ax, metric in zip(axes.flat, metrics, strict=False):
        rows = _delta_rows(result, metric)[::-1]  # first version on top
        ys = list(range(len(rows)))
        reach = 0.0
        for y, r in zip(ys, rows, strict=True):
            d = r["delta"]
            lo, hi = r.get("delta_ci_low"), r.get("delta_ci_high")
            p = r.get("p")
            sig = (
                (p < 0.05)
                if p is not None
                else (lo is not None and hi is not None and (lo > 0 or hi < 0))
            )
            color = "#1f77b4" if sig else "#888888"
            xerr = [[d - lo], [hi - d]] if lo is not None and hi is not None else None
            ax.errorbar([d], [y], xerr=xerr, fmt="o", color=color, capsize=4, markersize=6)
            reach = max(reach, abs(d), abs(lo or 0.0), abs(hi or 0.0))
            if p is not None:
                ax.annotate(
                    "p<0.001" if p < 0.001 else f"p={p:.2f}",
                    (d, y),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize=7,
                    color=color,
                )
        ax.axvline(0.0, color="#b3261e", linewidth=1)
        reach = max(reach * 1.25, 1e-3)
        ax.set_xlim(-reach, reach)  # symmetric: zero in the middle, no zoom that hides it
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_yticks(ys, [r["version"] for r in rows])
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(
        f"delta vs {result['baseline']}: paired, 95% CI (bootstrap over test rows and seeds); "
        "grey = p >= 0.05",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def means_figure(result: dict[str, Any]) -> Any:
    """Means with 95% CIs by version, on the metric's whole range where it is bounded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tamis.sweeps.stats import bounds_of

    metrics = [m for m in [*result["metrics"], *result.get("figures", [])] if _rows(result, m)]
    if not metrics:
        return None
    ncols = min(3, len(metrics))
    nrows = (len(metrics) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        rows = _rows(result, metric)
        xs = list(range(len(rows)))
        for x, r in zip(xs, rows, strict=True):
            lo, hi = _err([r])
            ax.errorbar([x], [r["mean"]], yerr=[lo, hi], fmt="o", capsize=5, markersize=7)
        ax.set_xticks(xs, [r["version"] for r in rows], rotation=30, ha="right")
        ax.set_xlim(-0.5, len(rows) - 0.5)
        bounds = bounds_of(metric)
        if bounds is not None:
            ax.set_ylim(*bounds)
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(f"{result['name']}: mean and 95% CI")
    fig.tight_layout()
    return fig


def curves_figure(result: dict[str, Any]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = sorted({n for c in result["cells"] for n in (c.get("curves") or {})})
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for version in result["versions"]:
            series = [
                c["curves"][name]
                for c in result["cells"]
                if c["version"] == version and name in (c.get("curves") or {})
            ]
            if not series:
                continue
            steps = sorted({float(p[0]) for s in series for p in s})
            grid = np.full((len(series), len(steps)), np.nan)
            for i, s in enumerate(series):
                for x, y in s:
                    grid[i, steps.index(float(x))] = float(y)
            mean = np.nanmean(grid, axis=0)
            ax.plot(steps, mean, marker=".", label=version)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def tradeoff_figure(result: dict[str, Any]) -> Any:
    spec = result.get("tradeoff")
    if not spec:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = {r["version"]: r for r in _rows(result, spec["x"])}
    ys = {r["version"]: r for r in _rows(result, spec["y"])}
    both = [v for v in ys if v in xs]
    if not both:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for v in both:
        x, y = xs[v], ys[v]
        ax.errorbar(
            [x["mean"]],
            [y["mean"]],
            xerr=[[a[0]] for a in _err([x])],
            yerr=[[a[0]] for a in _err([y])],
            fmt="o",
            capsize=3,
        )
        ax.annotate(
            v, (x["mean"], y["mean"]), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    ax.set_xlabel(f"{spec['x']} (privacy risk; lower is better)")
    ax.set_ylabel(f"{spec['y']} (utility)")
    ax.set_title("utility-privacy trade-off (mean, 95% CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


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


def summary_rows(result: dict[str, Any]) -> list[dict[str, str]]:
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


def _test_note(result: dict[str, Any]) -> str:
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


def write_report(result: dict[str, Any], out_dir: Path) -> dict[str, Any]:
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
