"""`normalize`: casts to date/datetime (text is parsed, optional `format`), and the fixes its
errors give actually work."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import polars as pl
import pytest

from tamis.errors import StepError
from tamis.pipelines.steps.normalize import Normalize, NormalizeParams


def run(frame: pl.DataFrame, **params: Any) -> pl.DataFrame:
    out = Normalize().run({"input": frame.lazy()}, NormalizeParams(**params), None)  # type: ignore[arg-type]
    return out.frames["data"]


def test_cast_text_to_date_and_datetime() -> None:
    frame = pl.DataFrame(
        {
            "d": ["2020-01-02", "2021-03-04", None],
            "t": ["2020-01-02 10:11:12", None, "2021-12-31 23:59:00"],
        }
    )
    out = run(frame, cast={"d": "date", "t": "datetime"})
    assert out.schema["d"] == pl.Date and isinstance(out.schema["t"], pl.Datetime)
    expected_d = pd.to_datetime(frame["d"].to_list()).date
    assert out["d"].to_list()[:2] == list(expected_d[:2]) and out["d"][2] is None
    assert out["t"].to_list() == [
        dt.datetime(2020, 1, 2, 10, 11, 12),
        None,
        dt.datetime(2021, 12, 31, 23, 59),
    ]


def test_cast_with_format() -> None:
    frame = pl.DataFrame({"us": ["01/02/2020", "12/31/2021"], "eu": ["02/01/2020", "31/12/2021"]})
    out = run(frame, cast={"us": "date", "eu": "date"}, format={"us": "%m/%d/%Y", "eu": "%d/%m/%Y"})
    assert (
        out["us"].to_list() == out["eu"].to_list() == [dt.date(2020, 1, 2), dt.date(2021, 12, 31)]
    )
    # one format for every date cast
    one = run(frame.select("us"), cast={"us": "datetime"}, format="%m/%d/%Y")
    assert one["us"].to_list() == [dt.datetime(2020, 1, 2), dt.datetime(2021, 12, 31)]


def test_bad_date_error_and_its_fixes_work() -> None:
    frame = pl.DataFrame({"when": ["2020-01-02", "31.12.2021", "not a date"]})
    with pytest.raises(StepError) as err:
        run(frame, cast={"when": "date"}, format="%Y-%m-%d")
    assert "strict_cast: false" in (err.value.fix or "") and "format" in (err.value.fix or "")
    # fix 1: strict_cast: false turns what does not parse into null
    lenient = run(frame, cast={"when": "date"}, format="%Y-%m-%d", strict_cast=False)
    assert lenient["when"].to_list() == [dt.date(2020, 1, 2), None, None]
    # fix 2: the right format
    dotted = pl.DataFrame({"when": ["02.01.2020", "31.12.2021"]})
    assert run(dotted, cast={"when": "date"}, format="%d.%m.%Y")["when"].to_list() == [
        dt.date(2020, 1, 2),
        dt.date(2021, 12, 31),
    ]


def test_date_columns_from_other_types_still_cast() -> None:
    frame = pl.DataFrame({"ts": [dt.datetime(2020, 1, 2, 3, 4)], "n": ["5"]})
    out = run(frame, cast={"ts": "date", "n": "int"})
    assert out["ts"].to_list() == [dt.date(2020, 1, 2)] and out["n"].to_list() == [5]


def test_every_text_column_cast_and_names_that_clash_after_stripping() -> None:
    # fuzz finds (issue 13): no text column left to infer, and two names equal once stripped
    frame = pl.DataFrame({"a": ["x", "y"], "b": ["1", "2"]})
    out = run(frame, cast={"a": "category", "b": "int"})
    assert out.schema["a"] == pl.Categorical and out["b"].to_list() == [1, 2]
    clash = pl.DataFrame({"a": [1], " a": [2], "b ": [3]})
    with pytest.raises(StepError, match=r"two columns named 'a' \('a', ' a'\)"):
        run(clash)
    assert run(clash, strip_column_names=False).columns == ["a", " a", "b "]


def test_numbers_cast_to_dates_are_refused_or_parsed_as_digits() -> None:
    # QA (helper K): `cast: {age: datetime}` on adult gave 1970-01-01 00:00:00.000039 for age 39
    # (Polars reads numbers as time since 1970), silently; yyyymmdd digits (DuckDB sniffs them as
    # BIGINT) became dates tens of thousands of years away
    frame = pl.DataFrame({"age": [39, 50], "day": [20240105, 20231231]})
    for dtype in ("date", "datetime"):
        with pytest.raises(StepError) as err:
            run(frame, cast={"age": dtype})
        assert err.value.column == "age" and "format" in (err.value.fix or "")
    out = run(frame, cast={"day": "date"}, format={"day": "%Y%m%d"})
    assert out["day"].to_list() == [dt.date(2024, 1, 5), dt.date(2023, 12, 31)]
    assert run(frame, cast={"day": "datetime"}, format="%Y%m%d")["day"].to_list()[0] == (
        dt.datetime(2024, 1, 5)
    )


def test_cast_error_counts_every_value_that_does_not_cast() -> None:
    # QA (helper K): Polars' message said "for 1 out of 1 values" when three dates failed
    dates = pl.DataFrame({"day": ["05/01/2024", "10/02/2024", "11/02/2024"]})
    with pytest.raises(StepError) as err:
        run(dates, cast={"day": "date"}, format="%Y-%m-%d")
    assert "3 of 3 non-null values do not cast" in str(err.value)
    frame = pl.DataFrame(
        {"x": ["a", "b", "a", "c", None, "5"], "y": ["1", "2", "3", "4", "5", "6"]}
    )
    with pytest.raises(StepError) as err:
        run(frame, cast={"x": "int", "y": "int"})
    msg = str(err.value)
    assert "column 'x' to int: 4 of 5 non-null values do not cast (e.g. 'a', 'b', 'c')" in msg
    assert "column 'y'" not in msg
