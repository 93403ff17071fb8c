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
    source = resources.files("tamis.pipelines.builtin").joinpath("demo.yaml")
    with resources.as_file(source) as src:
        shutil.copyfile(src, pipeline)
    result = build(pipeline, store, progress=progress)
    versions = [
        {"ref": f"{result.pipeline}/{label}", "id": m["id"], "rows": m["rows"]}
        for label, m in result.versions.items()
    ]
    last = versions[-1]["ref"]
    return {
        "pipeline_file": str(pipeline),
        "store": str(store.root),
        "seconds": round(time.perf_counter() - t0, 3),
        "build": result.to_json(),
        "versions": versions,
        "next": [
            f"tamis versions --store {store.root}",
            f"tamis show {last} --store {store.root}",
            f"tamis lineage {last} --store {store.root}",
            f"tamis diff demo/labelled demo/dedup --store {store.root}",
            f"tamis show demo/cleaned --store {store.root}   (label issues found by cleanlab)",
            f"tamis export {last} --to small.csv --format csv --store {store.root}",
            f"edit {pipeline} and run: tamis build {pipeline} --store {store.root}",
        ],
    }
