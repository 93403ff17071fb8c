"""Plots and the self-contained HTML report of a sweep.

- metric by version: the mean across seeds with 95% t-CI bars, one panel per metric;
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


def metric_figure(result: dict[str, Any]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in [*result["metrics"], *result.get("figures", [])] if _rows(result, m)]
    ncols = min(3, max(1, len(metrics)))
    nrows = max(1, (len(metrics) + ncols - 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        rows = _rows(result, metric)
        xs = list(range(len(rows)))
        colors = ["#666666" if r["version"] == result["baseline"] else "#1f77b4" for r in rows]
        # points with CI bars, not bars: the y axis is zoomed to the differences
        for x, r, color in zip(xs, rows, colors, strict=True):
            lo, hi = _err([r])
            ax.errorbar(
                [x], [r["mean"]], yerr=[lo, hi], fmt="o", color=color, capsize=5, markersize=7
            )
        ax.set_xticks(xs, [r["version"] for r in rows], rotation=30, ha="right")
        ax.set_xlim(-0.5, len(rows) - 0.5)
        lows = [r["ci_low"] if r.get("ci_low") is not None else r["mean"] for r in rows]
        highs = [r["ci_high"] if r.get("ci_high") is not None else r["mean"] for r in rows]
        pad = max(1e-3, (max(highs) - min(lows)) * 0.25)
        ax.set_ylim(min(lows) - pad, max(highs) + pad)
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(f"{result['name']}: mean and 95% CI over {len(result['seeds'])} seeds")
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


def write_report(result: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write PNG plots and `report.html` into out_dir; returns their paths."""
    plots: dict[str, str] = {}
    sections: list[tuple[str, str]] = []
    cols = [
        "version",
        "metric",
        "n",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "delta",
        "delta_ci_low",
        "delta_ci_high",
        "p_ttest",
        "boot_ci_low",
        "boot_ci_high",
        "p_bootstrap",
    ]
    sections.append(
        (
            "Summary",
            htmlreport.table_tag(result["table"], cols)
            + (
                f'<p class="note">mean, sample sd and 95% Student-t CI across seeds; delta = version - '
                f"{html.escape(str(result['baseline']))} paired by seed, with the paired t-test p-value and "
                "a percentile bootstrap CI/p-value of the mean difference.</p>"
            ),
        )
    )
    for kind, maker in (
        ("metrics", metric_figure),
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
            "metrics": "Metrics by version",
            "tradeoff": "Utility-privacy trade-off",
            "curves": "Learning curves",
        }[kind]
        sections.append((title, tag))
    cells = [
        {
            "version": c["version"],
            "seed": c["seed"],
            **c["metrics"],
            "seconds": c.get("seconds"),
            "data_id": str(c["data_id"])[:12],
        }
        for c in result["cells"]
    ]
    sections.append(("Cells", htmlreport.table_tag(cells)))
    page = htmlreport.page(
        f"Sweep {result['name']}",
        sections,
        subtitle=f"{result['description']} - recipe {result['recipe']['use']}, seeds "
        f"{result['seeds']}, sweep id {result['sweep_id']}",
    )
    html_path = out_dir / "report.html"
    html_path.write_text(page)
    return {"html": str(html_path), "plots": plots}
