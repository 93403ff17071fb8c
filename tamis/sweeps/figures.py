"""The plots of a sweep report (matplotlib, Agg backend):

- paired deltas (the main plot): per metric, each version's delta against the baseline with its
  95% CI (paired bootstrap over test rows and seeds) and a line at zero, so a reader sees at once
  whether an effect is larger than the test set's sampling noise; with no baseline to compare
  with, the means with their CIs on the metric's full range;
- learning curves (LM recipes): each version's curve, mean across seeds;
- utility-privacy trade-off (when the sweep names one): utility mean +- CI against the privacy
  figure mean +- CI, one point per version.
"""

from __future__ import annotations

from typing import Any

from tamis.sweeps.documents import SweepResult, TableRow


def _rows(result: SweepResult, metric: str) -> list[TableRow]:
    return [r for r in result["table"] if r["metric"] == metric and r.get("mean") is not None]


def _mean(row: TableRow) -> float:
    """The mean of a row `_rows` kept (it has one)."""
    mean = row.get("mean")
    assert mean is not None
    return mean


def _err(rows: list[TableRow]) -> list[list[float]]:
    lo: list[float] = []
    hi: list[float] = []
    for r in rows:
        low, high = r.get("ci_low"), r.get("ci_high")
        lo.append(_mean(r) - low if low is not None else 0.0)
        hi.append(high - _mean(r) if high is not None else 0.0)
    return [lo, hi]


def _delta_rows(result: SweepResult, metric: str) -> list[TableRow]:
    return [
        r
        for r in result["table"]
        if r["metric"] == metric
        and r.get("delta") is not None
        and r["version"] != result["baseline"]
    ]


def delta_figure(result: SweepResult) -> Any:
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
            d = r.get("delta")
            assert d is not None  # _delta_rows keeps the rows with a delta
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


def means_figure(result: SweepResult) -> Any:
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
            ax.errorbar([x], [_mean(r)], yerr=[lo, hi], fmt="o", capsize=5, markersize=7)
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


def curves_figure(result: SweepResult) -> Any:
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


def tradeoff_figure(result: SweepResult) -> Any:
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
            [_mean(x)],
            [_mean(y)],
            xerr=[[a[0]] for a in _err([x])],
            yerr=[[a[0]] for a in _err([y])],
            fmt="o",
            capsize=3,
        )
        ax.annotate(v, (_mean(x), _mean(y)), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(f"{spec['x']} (privacy risk; lower is better)")
    ax.set_ylabel(f"{spec['y']} (utility)")
    ax.set_title("utility-privacy trade-off (mean, 95% CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
