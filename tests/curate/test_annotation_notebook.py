"""notebooks/04_annotation.ipynb (issue 18) runs top to bottom offline and is committed without
outputs (the same checks as tests/notebooks/test_notebooks.py)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_annotation.ipynb"


def test_committed_without_outputs() -> None:
    book = nbformat.read(BOOK, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_runs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    book = nbformat.read(BOOK, as_version=4)
    client = NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=dict(os.environ))
    errors = [
        o
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors, errors[0].get("evalue") if errors else None
