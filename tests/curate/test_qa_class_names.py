"""QA (helper K): errors about a too-small class name the class by its label value."""

import polars as pl
import pytest

from tamis.errors import DataError


def test_label_issues_names_rare_class_by_value() -> None:
    from tamis.curate.label_issues import LabelIssuesConfig, find_label_issues

    df = pl.DataFrame({"x": [1, 2, 3, 4, 5], "label": ["p", "p", "p", "p", "q"]})
    with pytest.raises(DataError) as err:
        find_label_issues(df, LabelIssuesConfig(label="label", features=["x"]))
    msg = str(err.value)
    assert "class 'q'" in msg, msg  # was "class '1'": the code, not the value
