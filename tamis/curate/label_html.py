"""Self-contained HTML pages for the label/validation steps (plots inlined, no network)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.htmlreport import figure_tag, page, table_tag


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pick(report: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: report[k] for k in keys if k in report}


def write_label_issues_html(report: dict[str, Any], path: str | Path, scores: pl.Series) -> None:
    """Summary, per-class table, label-quality histogram, worst rows."""
    summary = _pick(
        report,
        (
            "rows_in",
            "rows_out",
            "null_labels_dropped",
            "label_issues",
            "issue_rate",
            "action",
            "model",
            "folds",
            "filter_by",
            "out_of_fold_accuracy",
        ),
    )
    sections = []
    if report.get("warnings"):  # first: what a reader must know before trusting the flags
        sections.append(("Warnings", "<br>".join(html.escape(w) for w in report["warnings"])))
    sections.append(("Summary", table_tag([summary])))
    if report.get("model_check"):
        sections.append(("Model against the majority class", table_tag([report["model_check"]])))
    if report.get("detection"):
        sections.append(("Detection against the known truth", table_tag([report["detection"]])))
    sections.append(("Per class", table_tag(report.get("per_class", []))))
    if len(scores):
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(scores.to_numpy(), bins=50, color="#4062bb")
        ax.set_xlabel("label_quality_score (low = likely wrong)")
        ax.set_ylabel("rows")
        sections.append(("Label quality", figure_tag(fig, "label quality histogram")))
    sections.append(("Worst rows", table_tag(report.get("top_issues", []))))
    Path(path).write_text(page("Label issues", sections), encoding="utf-8")


def write_consensus_html(
    report: dict[str, Any], tables: dict[str, pl.DataFrame], path: str | Path
) -> None:
    """Agreement statistics, pairwise kappa heatmap, annotators, adjudication list, drift."""
    summary = _pick(
        report,
        (
            "items",
            "annotations",
            "annotators",
            "fleiss_kappa",
            "krippendorff_alpha",
            "mean_cohen_kappa",
            "low_agreement",
            "low_agreement_action",
            "method",
            "pred_probs",
        ),
    )
    sections = [("Agreement", table_tag([summary]))]
    pairs = tables.get("pairwise_kappa")
    if pairs is not None and pairs.height:
        names = sorted(set(pairs["annotator_a"].to_list()) | set(pairs["annotator_b"].to_list()))
        if len(names) <= 40:
            idx = {n: i for i, n in enumerate(names)}
            m = np.full((len(names), len(names)), np.nan)
            for r in pairs.iter_rows(named=True):
                i, j = idx[r["annotator_a"]], idx[r["annotator_b"]]
                m[i, j] = m[j, i] = r["kappa"]
            plt = _plt()
            fig, ax = plt.subplots(figsize=(1 + 0.35 * len(names), 0.8 + 0.35 * len(names)))
            im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdYlGn")
            ax.set_xticks(range(len(names)), names, rotation=90)
            ax.set_yticks(range(len(names)), names)
            fig.colorbar(im, ax=ax, label="Cohen's kappa")
            sections.append(("Pairwise Cohen's kappa", figure_tag(fig, "pairwise kappa")))
    if "annotators" in tables:
        sections.append(("Annotators", table_tag(tables["annotators"].to_dicts())))
    if "gold_drift" in tables:
        drift = tables["gold_drift"].filter(pl.col("drift"))
        sections.append(("Gold drift (flagged windows)", table_tag(drift.to_dicts())))
    if "adjudication" in tables:
        sections.append(
            ("Adjudication (first 200)", table_tag(tables["adjudication"].head(200).to_dicts()))
        )
    Path(path).write_text(page("Annotator agreement", sections), encoding="utf-8")


def write_validation_html(report: dict[str, Any], path: str | Path) -> None:
    """One row per expectation, pass/fail, observed values."""
    rows = []
    for r in report.get("results", []):
        observed = r.get("observed") or {}
        shown = {
            k: observed[k]
            for k in ("observed_value", "unexpected_count", "unexpected_percent")
            if k in observed
        }
        rows.append(
            {
                "expectation": r["description"],
                "result": "pass" if r["success"] else "FAIL",
                "observed": shown,
                "exception": r.get("exception") or "",
            }
        )
    status = "pass" if report.get("success") else "fail"
    head = (
        f'<p class="{status}">{report.get("evaluated", 0) - report.get("failed", 0)} of '
        f"{report.get('evaluated', 0)} expectations passed</p>"
    )
    Path(path).write_text(
        page("Validation", [("Result", head + table_tag(rows))]), encoding="utf-8"
    )
