"""`sample`: a misspelled stratify column is an error that lists the columns (it had no fix)."""

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
