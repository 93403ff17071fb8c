"""The audit page's figures (inlined SVG/PNG): real vs synthetic distributions, DCR histograms,
ROC curves of the membership attacks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from tamis.htmlreport import figure_tag


def _discrete(real: pl.Series, synthetic: pl.Series) -> bool:
    """Few real values that the synthetic column reuses exactly: compare as categories.

    A coded float column (ages 17.5, 22, 27, ...) synthesised as continuous values must be drawn
    as histograms, or the synthetic bars are almost all missing from the plot.
    """
    if real.n_unique() > 12:
        return False
    rv = set(real.drop_nulls().cast(pl.Float64).unique().to_list())
    sv = set(synthetic.drop_nulls().cast(pl.Float64, strict=False).drop_nulls().unique().to_list())
    return sv <= rv


def distributions_figure(real: pl.DataFrame, synthetic: pl.DataFrame, max_cols: int = 16) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = real.columns[:max_cols]
    ncol = 4
    nrow = max(1, math.ceil(len(cols) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.6 * nrow), squeeze=False)
    for ax, col in zip(list(axes.flat)[: len(cols)], cols, strict=True):
        r, s = real[col], synthetic[col]
        if r.dtype.is_numeric() and not _discrete(r, s):
            rv = r.drop_nulls().cast(pl.Float64).to_numpy()
            sv = s.drop_nulls().cast(pl.Float64, strict=False).drop_nulls().to_numpy()
            lo, hi = np.nanquantile(np.r_[rv, sv], [0.005, 0.995]) if len(rv) + len(sv) else (0, 1)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist(rv, bins=bins, alpha=0.55, density=True, label="real")
            ax.hist(sv, bins=bins, alpha=0.55, density=True, label="synthetic")
        else:
            rc = r.cast(pl.Utf8).fill_null("(null)").value_counts(sort=True, name="n").head(10)
            cats = rc[col].to_list()
            rfreq = (rc["n"] / r.len()).to_numpy()
            sc = s.cast(pl.Utf8).fill_null("(null)").value_counts(name="n")
            smap = dict(zip(sc[col].to_list(), (sc["n"] / max(s.len(), 1)).to_list(), strict=True))
            sfreq = np.array([smap.get(c, 0.0) for c in cats])
            x = np.arange(len(cats))
            ax.bar(x - 0.2, rfreq, 0.4, label="real")
            ax.bar(x + 0.2, sfreq, 0.4, label="synthetic")
            ax.set_xticks(x, [str(c)[:12] for c in cats], rotation=60, fontsize=7)
        ax.set_title(col, fontsize=9)
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return figure_tag(fig, "real vs synthetic distributions")


def dcr_figure(arrays: dict[str, np.ndarray]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, (a, b, title) in zip(
        axes,
        [("dcr_train", "dcr_holdout", "DCR"), ("nndr_train", "nndr_holdout", "NNDR")],
        strict=True,
    ):
        x, y = arrays[a], arrays[b]
        hi = float(np.quantile(np.r_[x, y], 0.99)) or 1.0
        bins = np.linspace(0, hi, 40)
        ax.hist(np.clip(x, 0, hi), bins=bins, alpha=0.55, label="synthetic -> train")
        ax.hist(np.clip(y, 0, hi), bins=bins, alpha=0.55, label="synthetic -> holdout")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_tag(fig, "DCR and NNDR histograms")


def roc_figure(mia: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, res in mia.items():
        if "roc" not in res:
            continue
        fpr, tpr = np.asarray(res["roc"]["fpr"]), np.asarray(res["roc"]["tpr"])
        label = f"{name} (AUC {res['auc']:.3f})"
        axes[0].plot(fpr, tpr, label=label)
        axes[1].loglog(np.maximum(fpr, 1e-4), np.maximum(tpr, 1e-4), label=label)
    for ax in axes:
        ax.plot([1e-4, 1], [1e-4, 1], "k--", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=8)
    axes[0].set_title("membership inference ROC")
    axes[1].set_title("log-log (low-FPR regime)")
    fig.tight_layout()
    return figure_tag(fig, "ROC curves of the membership attacks")
