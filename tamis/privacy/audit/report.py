"""The audit as a self-contained HTML page (plots inlined) and as JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tamis.htmlreport import page, table_tag
from tamis.privacy.audit.charts import dcr_figure, distributions_figure, roc_figure
from tamis.privacy.audit.core import AuditResult


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _clean(report)
    return out


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(to_json(report), indent=2, default=str))


def _kv(d: dict[str, Any]) -> str:
    return table_tag(
        [{"figure": k, "value": v} for k, v in d.items() if not isinstance(v, (dict, list))]
    )


def _ledger_html(ledger: dict[str, Any] | list[Any]) -> str:
    """The DP ledger of the synthetic version: settings, one row per mechanism, the total."""
    if isinstance(ledger, list):
        return table_tag([r for r in ledger if isinstance(r, dict)])
    parts = [_kv(ledger)]
    mechanisms = ledger.get("mechanisms") or ledger.get("entries") or []
    if isinstance(mechanisms, list) and mechanisms:
        parts.append(table_tag([m for m in mechanisms if isinstance(m, dict)]))
    total = ledger.get("total")
    if isinstance(total, dict):
        parts.append("<p><b>total</b></p>" + _kv(total))
    return "".join(parts)


def build_html(
    result: AuditResult,
    gate: dict[str, Any] | None = None,
    ledger: dict[str, Any] | list[Any] | None = None,
    title: str = "tamis privacy audit",
) -> str:
    rep = result.report
    sections: list[tuple[str, str]] = []
    if gate is not None:
        status = '<p class="pass">PASSED</p>' if gate["passed"] else '<p class="fail">FAILED</p>'
        rows = [
            {
                "check": c["check"],
                "value": c.get("value"),
                "min": c.get("min"),
                "max": c.get("max"),
                "bound": c["bound"],
                "result": "pass" if c["passed"] else "FAIL",
                "reason": c.get("reason", ""),
            }
            for c in gate["checks"]
        ]
        sections.append(("Release gate", status + table_tag(rows)))
    mia_rows = []
    attacks = {k: v for k, v in rep["mia"].items() if k != "worst"}
    for name, res in attacks.items():
        if "skipped" in res:
            mia_rows.append({"attack": name, "auc": res["skipped"]})
            continue
        mia_rows.append(
            {
                "attack": name,
                "auc": res["auc"],
                "auc 95% CI": f"[{res['auc_ci_low']:.3f}, {res['auc_ci_high']:.3f}]"
                if "auc_ci_low" in res
                else "",
                "TPR@1%FPR": res["tpr_at_fpr_0.01"],
                "TPR@0.1%FPR": res["tpr_at_fpr_0.001"],
                "n members": res["n_members"],
                "n non-members": res["n_nonmembers"],
            }
        )
    roc_html = roc_figure(attacks) if any("roc" in r for r in attacks.values()) else ""
    worst_html = ""
    w = rep["mia"].get("worst", {})
    if "auc" in w:
        worst_rows = [
            {
                "figure": key,
                "worst": w[key],
                "attack": w[f"{key}_attack"],
                f"{w['level']:.0%} CI (all attacks at once)": f"[{w[f'{key}_ci_low']:.4f}, "
                f"{w[f'{key}_ci_high']:.4f}]",
            }
            for key in ("auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001")
        ]
        worst_html = (
            f"<p><b>Worst case over {len(w['attacks'])} attacks</b> (mia.worst; strongest: "
            f"{w['strongest']}; {w['ci_method']})</p>" + table_tag(worst_rows)
        )
    sections.append(
        (
            "Membership inference",
            worst_html
            + table_tag(mia_rows)
            + '<p class="note">AUC 0.5 = the attacker cannot tell training rows from unseen rows.'
            "</p>" + roc_html,
        )
    )
    if "record_risk" in rep:
        rr = rep["record_risk"]
        rows = [
            {
                "real row": e["real_row"],
                "score": e["score"],
                "non-members scoring as high": e["nonmember_share_at_or_above"],
                "outlier": "yes" if e["outlier"] else "",
                **{k: v for k, v in list(e.get("record", {}).items())[:8]},
            }
            for e in rr["top"]
        ]
        sections.append(
            (
                "Most exposed training records",
                f'<p class="note">Under the {rr["attack"]} attack; outliers (top '
                f"{rr['outlier_share']:.0%} of distance to the nearest other training record) are "
                f"{rr['outlier_share_top_k']:.0%} of these {rr['top_k']} records against "
                f"{rr['outlier_share_all']:.0%} of all {rr['n_scored']} scored.</p>"
                + table_tag(rows),
            )
        )
    dcr_html = _kv(rep["dcr"]) + (dcr_figure(result.arrays) if result.arrays else "")
    sections.append(
        (
            "Distance to closest record",
            '<p class="note">Synthetic rows should be no closer to the training rows than to '
            "unseen holdout rows: closer_to_train_share near 0.5.</p>" + dcr_html,
        )
    )
    sections.append(("Exact matches", _kv(rep["exact_match"])))
    for key, heading in (
        ("disclosure", "Disclosure risk (SDMetrics)"),
        ("linkage", "Record linkage risk"),
        ("anonymeter", "anonymeter"),
        ("k_anonymity", "k-anonymity / l-diversity (synthetic)"),
        ("k_anonymity_real", "k-anonymity / l-diversity (real, for comparison)"),
    ):
        if key in rep:
            sections.append((heading, _kv(rep[key])))
    if "validity" in rep:
        v = rep["validity"]
        rows = [
            {
                "column": col,
                "checked against": f"{e['source']} {e['kind']}",
                "out of range / new category share": e.get(
                    "out_of_range_share", e.get("new_category_share")
                ),
                "new categories": ", ".join(e.get("new_categories", []))
                + (
                    f" (+{e['n_new_categories'] - len(e['new_categories'])} more)"
                    if e.get("n_new_categories", 0) > len(e.get("new_categories", []))
                    else ""
                ),
                "null rate change": e["null_rate_change"],
            }
            for col, e in v["columns"].items()
        ]
        sections.append(
            (
                "Validity of synthetic values",
                _kv({k: x for k, x in v.items() if k != "columns"}) + table_tag(rows),
            )
        )
    if "pii" in rep:
        sections.append(("PII scan", table_tag(rep["pii"]["findings"])))
    if "quality" in rep:
        q = rep["quality"]
        sections.append(
            (
                "Quality (SDMetrics)",
                _kv({k: q[k] for k in ("score", "column_shapes", "column_pair_trends")})
                + table_tag(q["columns"]),
            )
        )
    if "ml_efficacy" in rep:
        ml = rep["ml_efficacy"]
        rows = [
            {"train on": label, **{k: ml[key][k] for k in ("accuracy", "minority_f1", "auc")}}
            for label, key in (("synthetic (TSTR)", "tstr"), ("real (TRTR)", "trtr"))
        ]
        sections.append(("ML efficacy on the real holdout", table_tag(rows)))
    if ledger:
        sections.append(("Privacy ledger", _ledger_html(ledger)))
    if result.samples:
        sections.append(
            (
                "Real vs synthetic distributions",
                distributions_figure(result.samples["real"], result.samples["synthetic"]),
            )
        )
    subtitle = (
        f"real {rep['n_real']} rows, synthetic {rep['n_synthetic']} rows, "
        f"holdout {rep['n_holdout']} rows; seed {rep['seed']}"
    )
    return page(title, sections, subtitle=subtitle)
