"""`tamis demo`: build the embedded pipeline on statsmodels' `fair` survey, offline."""

from __future__ import annotations

import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

from tamis.errors import TamisError
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store


def write_demo_data(directory: Path) -> Path:
    """Write the survey as CSV (statsmodels ships it; nothing is downloaded)."""
    try:
        from statsmodels.datasets import fair
    except ImportError as exc:  # pragma: no cover - statsmodels is a core dependency
        raise TamisError("the demo needs statsmodels", fix="pip install statsmodels") from exc
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fair.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fair.load_pandas().data.to_csv(tmp, index=False)
        tmp.replace(path)
    return path


def label_cleaning_summary(store: Store, pipeline: str, step: str = "cleaned") -> dict[str, Any]:
    """What label cleaning did, measured against the flips the demo injected (its truth)."""
    report = store.manifest(f"{pipeline}/{step}").get("report") or {}
    check = report.get("model_check") or {}
    det = report.get("detection") or {}
    out: dict[str, Any] = {
        "ref": f"{pipeline}/{step}",
        "rows_in": report.get("rows_in"),
        "flagged": report.get("label_issues"),
        "action": report.get("action"),
        "out_of_fold_accuracy": check.get("out_of_fold_accuracy"),
        "majority_class_rate": check.get("majority_class_rate"),
        "weak_model": check.get("weak"),
    }
    if det:
        out.update(
            {
                "injected_flips": det["known_wrong"],
                "flipped_among_flagged": det["true_positives"],
                "correct_rows_flagged": det["false_positives"],
                "precision": det["precision"],
                "recall": det["recall"],
            }
        )
        line = (
            f"label cleaning flagged {det['flagged']:,} of {out['rows_in']:,} rows;"
            f" {det['true_positives']:,} of them were among the {det['known_wrong']:,} injected"
            f" flips (precision {det['precision']:.2f}, recall {det['recall']:.2f}), so"
            f" {det['false_positives']:,} correct rows were flagged"
        )
    else:
        line = f"label cleaning flagged {out['flagged']} of {out['rows_in']} rows"
    if check:
        line += (
            f"; out-of-fold accuracy {check['out_of_fold_accuracy']:.2f} against"
            f" {check['majority_class_rate']:.2f} for the majority class"
            + (" (too weak to trust: see the warning)" if check.get("weak") else "")
        )
    out["summary"] = line
    return out


def run_demo(store: Store, progress: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    workdir = store.root / "demo"
    write_demo_data(workdir)
    pipeline = workdir / "demo.yaml"
    builtin = resources.files("tamis.pipelines.builtin")
    kept: list[str] = []
    for name in ("demo.yaml", "demo_policy.yaml"):
        shipped = builtin.joinpath(name).read_bytes()
        target = workdir / name
        if target.exists() and target.read_bytes() != shipped:
            # the user edited it (the demo invites that): keep it beside, never overwrite it
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = target.with_name(f"{name}.{stamp}.edited")
            os.replace(target, aside)
            kept.append(f"your edited {target} was kept as {aside}")
        if not target.exists():
            tmp = target.with_name(f".{name}.tmp")
            tmp.write_bytes(shipped)
            os.replace(tmp, target)
    result = build(pipeline, store, progress=progress)
    versions = [
        {"ref": f"{result.pipeline}/{label}", "id": m["id"], "rows": m["rows"]}
        for label, m in result.versions.items()
    ]
    cleaning = label_cleaning_summary(store, result.pipeline)
    warnings = kept + [f"{s.name}: {w}" for s in result.steps for w in s.warnings]
    policy = workdir / "demo_policy.yaml"
    st = f"--store {store.root}"
    return {
        "pipeline_file": str(pipeline),
        "store": str(store.root),
        "seconds": round(time.perf_counter() - t0, 3),
        "build": result.to_json(),
        "versions": versions,
        "label_cleaning": cleaning,
        "warnings": warnings,
        "next": [
            f"tamis versions {st}",
            f"tamis show demo/dedup {st}          # duplicate clusters found and removed",
            f"tamis diff demo/noisy demo/cleaned {st}   # rows cleanlab flagged as label issues",
            f"tamis lineage demo/cleaned {st}",
            f"tamis show demo/audit {st}          # privacy audit of the synthetic survey",
            f"tamis audit demo/parts.train demo/synth --holdout demo/parts.test --policy {policy}"
            f" --html audit.html {st}",
            f"tamis train rm --data demo/prefs --model tiny --out runs/rm {st}",
            f"tamis sweep label_noise {st}",
            f"tamis export demo/cleaned --to cleaned.csv --format csv {st}",
            f"edit {pipeline} and rebuild: tamis build {pipeline} {st}",
        ],
    }
