"""Fuzz the label steps `leakage` and `label_issues` (issue 12 section 4, issue 13 section 5).

Small random frames with nulls (and NaN) in labels and features, unicode and emoji column names,
one row, one class, all-null columns, nested (list/struct) columns, and random (often wrong)
params. Through `run_step` every outcome is a result or a `TamisError`, never another exception;
through `tamis build` every exit code is 0/1/2/3 with no traceback and no `unexpected` error (the
CLI's catch-all for exceptions tamis did not anticipate). Seeded and derandomized: the same
examples on every run.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from tamis.cli import app
from tamis.errors import TamisError
from tamis.pipelines.runner import run_step

EXAMPLES = int(os.environ.get("TAMIS_FUZZ_EXAMPLES", "100"))
NAMES = ["y", "x", "é", "😀", "naïve col", "a b", "[/x]", "1", "null", "is_flag", "日本", "x_score"]
KINDS = ["int", "float", "str", "bool", "int", "float", "str", "list", "struct", "allnull"]
TEXT = st.sampled_from(["", " ", "a", "b", "é", "😀", "NaN", "1", "[/b]", "a b c"])


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def _values(kind: str, n: int) -> st.SearchStrategy[list[Any]]:
    value: st.SearchStrategy[Any] = {
        "int": st.integers(-2, 2),
        "float": st.one_of(st.floats(-2, 2, width=32), st.just(float("nan"))),
        "str": TEXT,
        "bool": st.booleans(),
        "list": st.lists(st.integers(0, 2), max_size=2),
        "struct": st.fixed_dictionaries({"k": st.integers(0, 1), "v": TEXT}),
        "allnull": st.none(),
    }[kind]
    return st.lists(st.one_of(st.none(), value), min_size=n, max_size=n)


_DTYPES: dict[str, Any] = {
    "int": pl.Int64,
    "float": pl.Float64,
    "str": pl.String,
    "bool": pl.Boolean,
    "list": pl.List(pl.Int64),
    "struct": pl.Struct({"k": pl.Int64, "v": pl.String}),
    "allnull": pl.String,
}


@st.composite
def frames(draw: Any) -> tuple[pl.DataFrame, str, list[str]]:
    """A frame, its label column's name, and its column kinds."""
    n = draw(st.sampled_from([1, 2, 3, 5, 8, 13, 24, 40]))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=5, unique=True))
    kinds = [draw(st.sampled_from(KINDS)) for _ in names]
    cols = {}
    for name, kind in zip(names, kinds, strict=True):
        vals = draw(_values(kind, n))
        mode = draw(st.sampled_from(["random", "few", "balanced", "balanced"]))
        if name == names[0] and mode == "few":  # the label: few classes, some nulls
            vals = [draw(st.sampled_from([None, 0, 1, 1, 0, 2])) for _ in range(n)]
            kind = "int"
        elif name == names[0] and mode == "balanced":  # every class repeated, a few nulls
            k = draw(st.integers(1, 3))
            pool = draw(st.sampled_from([[0, 1, 2], ["a", "😀", "é b"], [True, False, True]]))
            vals = [pool[i % k] for i in range(n)]
            for i in draw(st.lists(st.integers(0, n - 1), max_size=2)):
                vals[i] = None
            kind = {int: "int", str: "str", bool: "bool"}[type(pool[0])]
        cols[name] = pl.Series(name, vals, dtype=_DTYPES[kind], strict=False)
    return pl.DataFrame(cols), names[0], kinds


def _label(draw: Any, df: pl.DataFrame, label: str) -> str:
    return draw(st.sampled_from([label, label, label, "missing_col", df.columns[-1]]))


def fuzz(at: int, examples: int = EXAMPLES) -> Callable[[Callable[..., None]], Any]:
    """Seeded, derandomized hypothesis test drawing from `data` (the same examples every run)."""

    def wrap(test: Callable[..., None]) -> Any:
        return seed(at)(
            settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )(given(data=st.data())(test))
        )

    return wrap


def _features_and_text(data: st.DataObject, df: pl.DataFrame, params: dict[str, Any]) -> None:
    """Sometimes a `features` list (perhaps with a missing column), sometimes a `text` column."""
    if data.draw(st.booleans()):
        params["features"] = data.draw(
            st.lists(st.sampled_from([*df.columns, "nope"]), min_size=1, max_size=3)
        )
    if data.draw(st.integers(0, 3)) == 0:
        params["text"] = data.draw(st.sampled_from(df.columns))


def _run(step: str, inputs: dict[str, Any], params: dict[str, Any]) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = run_step(step, inputs, params)
        assert "data" in out.frames
    except TamisError as exc:
        assert exc.render().strip(), exc  # a message a user can read


@fuzz(12)
def test_leakage_run_step_never_crashes(data: st.DataObject) -> None:
    df, label, _ = data.draw(frames())
    against = df.sample(fraction=0.5, seed=0) if df.height > 1 else df
    params: dict[str, Any] = {"label": _label(data.draw, df, label)}
    params["action"] = data.draw(st.sampled_from(["report", "drop", "flag"]))
    params["target_auc_threshold"] = data.draw(st.sampled_from([0.99, 0.6, None]))
    if data.draw(st.booleans()):
        params["columns"] = data.draw(st.lists(st.sampled_from(df.columns), min_size=1, max_size=2))
    _features_and_text(data, df, params)
    if data.draw(st.integers(0, 3)) == 0:
        params["group"] = data.draw(st.sampled_from(df.columns))
    if data.draw(st.integers(0, 4)) == 0:
        params["time"] = data.draw(st.sampled_from(df.columns))
    params["cv_folds"] = data.draw(st.sampled_from([2, 5]))
    _run("leakage", {"input": df, "against": against}, params)


@fuzz(13)
def test_label_issues_run_step_never_crashes(data: st.DataObject) -> None:
    df, label, _ = data.draw(frames())
    params: dict[str, Any] = {"label": _label(data.draw, df, label)}
    params["action"] = data.draw(st.sampled_from(["flag", "drop", "relabel"]))
    params["folds"] = data.draw(st.sampled_from([2, 3]))
    params["model"] = data.draw(st.sampled_from(["auto", "gbm"]))
    _features_and_text(data, df, params)
    if data.draw(st.integers(0, 4)) == 0:
        params["truth"] = data.draw(st.sampled_from(df.columns))
    _run("label_issues", {"input": df}, params)


runner = CliRunner()


@fuzz(14, max(EXAMPLES // 10, 10))  # a build each: ~1 s
def test_label_steps_cli_exit_codes(data: st.DataObject) -> None:
    df, label, _ = data.draw(frames())
    step = data.draw(st.sampled_from(["leakage", "label_issues"]))
    params: dict[str, Any] = {"label": _label(data.draw, df, label)}
    if step == "label_issues":
        params["folds"] = 2
        params["action"] = data.draw(st.sampled_from(["flag", "drop"]))
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        df.write_parquet(where / "d.parquet")
        spec: dict[str, Any] = {
            "name": "fz",
            "sources": {"d": {"path": "d.parquet"}},
            "steps": {"s": {"use": step, "input": "d", "params": params}},
        }
        if step == "leakage":
            spec["steps"]["s"]["against"] = "d"
        (where / "p.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        res = runner.invoke(app, ["build", str(where / "p.yaml"), "--store", str(where / "st")])
    context = f"{step} {params} {df.schema}\n{res.output}"
    assert res.exit_code in (0, 1, 2, 3), context
    assert "Traceback" not in res.output, context
    assert "unexpected" not in res.output, context
    if res.exit_code:
        assert "error:" in res.output, context
