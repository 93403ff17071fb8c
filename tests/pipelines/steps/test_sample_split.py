"""`sample` and `split`: bad key columns are clear errors naming the param and the fix."""

from __future__ import annotations

import polars as pl
import pytest

from tamis.errors import StepError
from tamis.pipelines.runner import run_step


def test_misspelled_stratify_column_names_the_columns() -> None:
    df = pl.DataFrame({"age": [1, 2, 3], "income": ["a", "b", "a"]})
    with pytest.raises(StepError) as info:
        run_step("sample", {"input": df}, {"n": 2, "stratify": "incme"})
    assert info.value.field == "params.stratify" and info.value.column == "incme"
    assert info.value.fix == "columns: age, income"


def test_split_by_a_nested_column_is_a_clear_error() -> None:
    """Found by the build fuzz test: stratify on a list column was an 'unexpected' cast error."""
    df = pl.DataFrame({"a": [1, 2, 3], "b": [[1], [], None]})
    for key in ("stratify", "group"):
        with pytest.raises(StepError) as info:
            run_step("split", {"input": df}, {"fractions": {"x": 0.5, "y": 0.5}, key: "b"})
        assert info.value.column == "b" and info.value.field == f"params.{key}"
        assert "plain values" in info.value.message
