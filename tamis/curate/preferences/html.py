"""The preference stats report as a self-contained HTML page (tables + length-difference plot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.preferences.stats import length_diffs


def _reasons(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for unit in ("rows", "pairs", "prompts"):
        for reason, count in report.get(f"dropped_{unit}", {}).items():
            rows.append({"unit": unit[:-1], "reason": reason, "dropped": count})
    return rows


def _bias_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("n", "chosen_longer_share", "ci_low", "ci_high", "equal_length_share",
            "length_only_accuracy", "length_corr", "mean_length_diff", "mean_chosen_length",
            "mean_rejected_length", "length_gap_spearman")  # fmt: skip
    rows = []
    for label, name in (("before curation", "length_bias_before"), ("output", "length_bias")):
        lb = report.get(name)
        if lb and lb.get("n"):
            rows.append({"data": label, **{k: lb[k] for k in keys if k in lb}})
    return rows


def write_html(report: dict[str, Any], path: str | Path, pairs: pl.DataFrame | None = None) -> None:
    """Write the report (and, given the pairs, a histogram of length differences) to `path`."""
    from tamis.htmlreport import figure_tag, page, table_tag

    keys = ("from", "rows_in", "pairs_in", "pairs_out", "prompts_out", "ties_kept", "adjudicate",
            "synthetic")  # fmt: skip
    summary: dict[str, Any] = {k: report[k] for k in keys if k in report}
    sections = [("Summary", table_tag([summary]))]
    sections.append(("Dropped, per reason", table_tag(_reasons(report))))
    sections.append(("Length bias", table_tag(_bias_rows(report))))
    warning = report.get("length_bias", {}).get("warning")
    if warning:
        sections.append(("Warning", f'<p class="fail">{warning}</p>'))
    if pairs is not None and pairs.height:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        d = length_diffs(pairs)
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(d, bins=50, color="#4062bb")
        ax.axvline(0, color="#b3261e", lw=1)
        ax.set_xlabel("len(chosen) - len(rejected), characters")
        ax.set_ylabel("pairs")
        sections.append(("Length difference", figure_tag(fig, "length difference histogram")))
    turns = report.get("turns_per_prompt", {}).get("histogram", {})
    sections.append(
        ("Turns per prompt", table_tag([{"turns": k, "pairs": v} for k, v in turns.items()]))
    )
    if isinstance(report.get("agreement"), dict):
        sections.append(("Annotator agreement", table_tag([report["agreement"]])))
    note = (
        "Synthetic data: generated from templates, not human feedback."
        if report.get("synthetic")
        else ""
    )
    Path(path).write_text(page("Preference pairs", sections, subtitle=note), encoding="utf-8")
