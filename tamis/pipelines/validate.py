"""What `tamis validate` does: suggest a Great Expectations suite for DATA, or check DATA against
one. DATA is a store ref, a version id or a file (`read_data`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from tamis.pipelines.data import read_data


def suggest_data_suite(
    data: str, store: Any, out: Path, *, max_set_size: int = 20
) -> dict[str, Any]:
    """Write a starter suite describing DATA to `out`; how many expectations it holds."""
    from tamis.curate.starter_suite import suggest_suite, write_suite

    frame = read_data(data, store).frame
    suite = suggest_suite(frame, name=out.stem, max_set_size=max_set_size)
    write_suite(suite, out)
    return {"suite": str(out), "expectations": len(suite["expectations"])}


def check_data(
    data: str, store: Any, suite: Path, *, on_failure: Literal["fail", "warn"] = "fail"
) -> dict[str, Any]:
    """Validate DATA against the suite file; the report (raises GateFailed when it fails and
    `on_failure` is fail)."""
    from tamis.curate.validate import ValidateConfig, validate_frame

    config = ValidateConfig(suite=str(suite), on_failure=on_failure)
    return validate_frame(read_data(data, store).frame, config)
