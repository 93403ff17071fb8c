"""The figures the release gate can name: the audit report flattened to `section.figure` numbers."""

from __future__ import annotations

from typing import Any

#: report sections whose numeric entries are figures as they are (`section.key`)
PLAIN_SECTIONS = (
    "disclosure",
    "linkage",
    "anonymeter",
    "k_anonymity",
    "k_anonymity_real",
    "record_risk",
    "marginals",
)


def _mia(mia: dict[str, Any]) -> dict[str, float]:
    m: dict[str, float] = {}
    for attack, res in mia.items():
        for k in ("auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
            if k in res:
                for suffix in ("", "_ci_low", "_ci_high"):
                    if f"{k}{suffix}" in res:
                        m[f"mia.{attack}.{k}{suffix}"] = float(res[f"{k}{suffix}"])
    return m


def _plain(report: dict[str, Any]) -> dict[str, float]:
    m: dict[str, float] = {}
    for section in PLAIN_SECTIONS:
        for k, v in report.get(section, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                m[f"{section}.{k}"] = float(v)
    return m


def _validity(v: dict[str, Any]) -> dict[str, float]:
    m: dict[str, float] = {}
    for k in ("max_out_of_range_share", "max_new_category_share", "max_null_rate_increase"):
        if k in v:
            m[f"validity.{k}"] = float(v[k])
    for col, e in v.get("columns", {}).items():
        for k in ("out_of_range_share", "new_category_share", "null_rate_change"):
            if k in e:
                m[f"validity.{col}.{k}"] = float(e[k])
    return m


def _utility(report: dict[str, Any]) -> dict[str, float]:
    m: dict[str, float] = {}
    q = report.get("quality", {})
    for k in ("score", "column_shapes", "column_pair_trends"):
        if k in q:
            m[f"quality.{k}"] = float(q[k])
    ml = report.get("ml_efficacy", {})
    if ml:
        for k in ("accuracy", "minority_f1", "auc"):
            m[f"tstr.{k}"] = float(ml["tstr"][k])
            m[f"trtr.{k}"] = float(ml["trtr"][k])
            m[f"tstr.{k}_gap"] = float(ml[f"{k}_gap"])
    return m


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The figures the release gate can name, as `section.figure`."""
    m: dict[str, float] = {}
    m["exact_match_rate"] = report["exact_match"]["rate"]
    m["exact_match_rate_holdout"] = report["exact_match"]["holdout_rate"]
    for k, v in report["dcr"].items():
        if isinstance(v, (int, float)) and k not in ("n", "n_reference"):
            m[f"dcr.{k}"] = float(v)
    m.update(_mia(report["mia"]))
    m.update(_plain(report))
    m.update(_validity(report.get("validity", {})))
    if "pii" in report:
        m["pii.columns_flagged"] = float(report["pii"]["n_flagged"])
    m.update(_utility(report))
    return m
