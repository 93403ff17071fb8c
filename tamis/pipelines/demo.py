"""`tamis demo`: build the embedded pipeline on statsmodels' `fair` survey, offline."""

from __future__ import annotations

import shutil
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


def run_demo(store: Store, progress: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    workdir = store.root / "demo"
    write_demo_data(workdir)
    pipeline = workdir / "demo.yaml"
    builtin = resources.files("tamis.pipelines.builtin")
    for name in ("demo.yaml", "demo_policy.yaml"):
        with resources.as_file(builtin.joinpath(name)) as src:
            shutil.copyfile(src, workdir / name)
    result = build(pipeline, store, progress=progress)
    versions = [
        {"ref": f"{result.pipeline}/{label}", "id": m["id"], "rows": m["rows"]}
        for label, m in result.versions.items()
    ]
    policy = workdir / "demo_policy.yaml"
    st = f"--store {store.root}"
    return {
        "pipeline_file": str(pipeline),
        "store": str(store.root),
        "seconds": round(time.perf_counter() - t0, 3),
        "build": result.to_json(),
        "versions": versions,
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
