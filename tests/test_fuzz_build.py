"""Fuzz `tamis build`: random pipelines over random small CSV/TSV/Parquet/JSONL files.

Odd and duplicate column names, nulls, unicode, one row, nested values, random step chains with
random (often wrong) params. Every build must end with exit 0/1/2/3, a message and no traceback;
every error must be one tamis anticipated (no `unexpected ...` from the CLI's catch-all); a build
that succeeds leaves a store that `verify` finds clean. Seeded and derandomized: the same examples
on every run.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tamis.cli import app

runner = CliRunner()

NAMES = ["a", "b", "c", " a", "a ", "A", "x-y", "with space", "é", "😀", "[/x]", "1", "null", "id"]
KINDS = ["int", "float", "str", "bool", "nested_list", "nested_struct"]
TEXT = st.sampled_from(
    ["", " ", "x", " ?", "?", "a,b", 'q"q', "é", "😀", "NaN", "1", "1.5", "[/b]"]
)
EXAMPLES = int(os.environ.get("TAMIS_FUZZ_EXAMPLES", "300"))


@st.composite
def tables(draw: Any) -> dict[str, Any]:
    fmt = draw(st.sampled_from(["csv", "tsv", "parquet", "jsonl"]))
    n_cols = draw(st.integers(1, 5))
    names = [draw(st.sampled_from(NAMES)) for _ in range(n_cols)]
    if fmt != "csv":  # only a CSV header can repeat a name exactly
        names = list(dict.fromkeys(names))
    rows = draw(st.integers(1, 8))
    kinds = []
    cols: list[list[Any]] = []
    for _ in names:
        kind = draw(st.sampled_from(KINDS if fmt in ("parquet", "jsonl") else KINDS[:4]))
        kinds.append(kind)
        value: Any = {
            "int": st.integers(-3, 3),
            "float": st.floats(-2, 2, allow_nan=False, width=32),
            "str": TEXT,
            "bool": st.booleans(),
            "nested_list": st.lists(st.integers(0, 2), max_size=2),
            "nested_struct": st.fixed_dictionaries({"k": st.integers(0, 1), "v": TEXT}),
        }[kind]
        cols.append(draw(st.lists(st.one_of(st.none(), value), min_size=rows, max_size=rows)))
    return {"fmt": fmt, "names": names, "kinds": kinds, "cols": cols, "rows": rows}


def write_table(t: dict[str, Any], where: Path) -> Path:
    path = where / f"data.{t['fmt']}"
    if t["fmt"] in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="," if t["fmt"] == "csv" else "\t")
            w.writerow(t["names"])
            for i in range(t["rows"]):
                w.writerow(["" if c[i] is None else c[i] for c in t["cols"]])
    elif t["fmt"] == "jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(t["rows"]):
                fh.write(
                    json.dumps({n: c[i] for n, c in zip(t["names"], t["cols"], strict=True)}) + "\n"
                )
    else:
        frame = pl.DataFrame(
            {n: pl.Series(n, c, strict=False) for n, c in zip(t["names"], t["cols"], strict=True)}
        )
        frame.write_parquet(path)
    return path


def _normalize(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["cast"] = {
            draw(col): draw(st.sampled_from(["int", "float", "str", "category", "bool", "date"]))
        }
    if draw(st.booleans()):
        params["rename"] = {draw(col): draw(st.sampled_from(["z", "b", " z", "a"]))}
    if draw(st.booleans()):
        params["select" if draw(st.booleans()) else "drop"] = draw(some)
    if draw(st.booleans()):
        params["null_values"] = ["?", ""]
    params["strict_cast"] = draw(st.booleans())
    return params


def _filter(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    c = draw(col).strip()
    where = [f'"{c}" > 0', f'"{c}" == "x"', f"{c} is null", "((", f'"{c}" + 1']
    return {"where": draw(st.sampled_from(where))}


def _dedup(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    return {"columns": draw(st.one_of(st.just("all"), some)), "normalize": draw(st.booleans())}


def _near_dedup(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"column": draw(col)}
    return {
        "categorical": draw(some),
        "numeric": draw(some),
        "tolerance": draw(st.sampled_from([0, 0.5, 1])),
    }


def _sample(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["n"] = 0 if draw(rarely) else draw(st.integers(1, 12))
    else:
        params["fraction"] = draw(st.sampled_from([0.0, 0.5, 1.0, 1.5]))
    params["with_replacement"] = draw(st.booleans())
    return params


def _split(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "fractions": draw(
            st.sampled_from([{"train": 0.5, "test": 0.5}, {"train": 0.9, "test": 0.3}, {"x": 1.0}])
        )
    }
    if draw(st.booleans()):
        params["stratify"] = draw(col)
    return params


def _label_issues(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    return {"label": draw(col), "folds": draw(st.integers(2, 3)), "model": "logreg"}


def _inject_label_noise(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    return {"label": draw(col), "rate": draw(st.sampled_from([0.0, 0.5, 1.0]))}


def _leakage(draw: Any, col: Any, some: Any, rarely: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"columns": draw(st.one_of(st.just("all"), some))}
    if draw(st.booleans()):
        params["label"] = draw(col)
        params["cv_folds"] = 2
    params["near_threshold"] = None
    return params


#: step type -> how to draw its params (a type not listed gets none)
_PARAMS = {
    "normalize": _normalize,
    "filter": _filter,
    "dedup": _dedup,
    "near_dedup": _near_dedup,
    "sample": _sample,
    "split": _split,
    "label_issues": _label_issues,
    "inject_label_noise": _inject_label_noise,
    "leakage": _leakage,
}


@st.composite
def step_specs(draw: Any, names: list[str], prev: str) -> dict[str, Any]:
    col = st.sampled_from([*names, *names, *names, "missing", "a"])
    rarely = st.sampled_from([False] * 15 + [True])
    some = st.lists(col, min_size=0, max_size=3, unique=True)
    kind = draw(
        st.sampled_from(
            [
                *["normalize", "filter", "dedup", "near_dedup", "sample", "split"] * 3,
                *["label_issues", "leakage", "inject_label_noise"] * 2,
                "bogus",
            ]
        )
    )
    params = _PARAMS[kind](draw, col, some, rarely) if kind in _PARAMS else {}
    if draw(rarely):
        params["bogus_param"] = 1
    spec: dict[str, Any] = {"use": kind, "input": prev}
    if kind == "leakage":
        spec["against"] = "d"
    if params:
        spec["params"] = params
    return spec


@st.composite
def pipelines(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    table = draw(tables())
    steps: dict[str, Any] = {}
    prev = "d"
    for i in range(draw(st.integers(1, 3))):
        spec = draw(step_specs(table["names"], prev))
        name = f"s{i}"
        steps[name] = spec
        prev = name if spec["use"] != "split" else f"{name}.train"
    seed = draw(st.integers(0, 3))
    return table, {"name": "fz", "seed": seed, "sources": {"d": {"path": ""}}, "steps": steps}


def check_build(table: dict[str, Any], spec: dict[str, Any]) -> int:
    """Build `spec` over `table` through the CLI; assert a clean outcome; return the exit code."""
    from tamis.pipelines.store import Store
    from tamis.pipelines.verify import verify_store

    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        spec = {**spec, "sources": {"d": {"path": write_table(table, where).name}}}
        (where / "p.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
        store = where / "st"
        res = runner.invoke(app, ["build", str(where / "p.yaml"), "--store", str(store), "--json"])
        context = f"{yaml.safe_dump(spec, allow_unicode=True)}\n{table}\n{res.output[-3000:]}"
        assert res.exit_code in (0, 1, 2, 3), context
        assert res.exc_info is None or res.exc_info[0] is SystemExit, context
        assert "Traceback" not in res.output, context
        assert "unexpected" not in res.output, context
        if res.exit_code == 0:
            assert verify_store(Store(store), [], repair=False)["ok"], context
            # what a user does next: look at the versions and compare them
            refs = ["fz/d"] + [
                f"fz/{v}" for s in json.loads(res.stdout)["steps"] for v in s["versions"]
            ]
            first = table["names"][0].strip()
            for args in (
                ["show", refs[-1], "--rows", "2"],
                ["lineage", refs[-1]],
                ["diff", refs[0], refs[-1]],
                ["diff", refs[0], refs[-1], "--key", f"{first},{first}", "--json"],
            ):
                more = runner.invoke(app, [*args, "--store", str(store)])
                assert more.exit_code in (0, 1), f"{args}\n{context}\n{more.output[-2000:]}"
                assert more.exc_info is None or more.exc_info[0] is SystemExit, (args, context)
                assert "unexpected" not in more.output, (args, context, more.output[-2000:])
        else:
            assert "error" in json.loads(res.stdout), context
        return int(res.exit_code)


def _fuzz(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    check_build(*case)


SETTINGS = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


@pytest.mark.filterwarnings("ignore")
def test_fuzz_build_quick() -> None:
    """60 seeded examples in the default run (about 25 s; the slow test runs 300)."""
    settings(max_examples=int(os.environ.get("TAMIS_FUZZ_QUICK", "60")), **SETTINGS)(
        given(case=pipelines())(_fuzz)
    )()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_fuzz_build() -> None:
    """A few hundred seeded examples (TAMIS_FUZZ_EXAMPLES, default 300; ~1 s each)."""
    settings(max_examples=EXAMPLES, **SETTINGS)(given(case=pipelines())(_fuzz))()


def table(fmt: str, **cols: list[Any]) -> dict[str, Any]:
    rows = len(next(iter(cols.values())))
    return {"fmt": fmt, "names": list(cols), "kinds": [], "cols": list(cols.values()), "rows": rows}


# Builds the fuzzer found broken (a traceback, an `unexpected` error or a silent wrong result),
# kept as plain regression cases: (table, steps, expected exit code).
REGRESSIONS = [
    # normalize: renaming onto an existing name raised polars' DuplicateError
    (
        table("jsonl", a=[1, 2], b=[3, 4]),
        {"s0": {"use": "normalize", "input": "d", "params": {"rename": {"a": "b"}}}},
        1,
    ),
    # tabular near_dedup on struct/list columns could not cast them to text
    (
        table("jsonl", s=[{"k": 1}, {"k": 1}, {"k": 2}], l=[[1], [1], None]),
        {"s0": {"use": "near_dedup", "input": "d", "params": {"categorical": ["s", "l"]}}},
        0,
    ),
    # tabular near_dedup with no columns made every row a duplicate (1 row out, exit 0)
    (
        table("csv", a=[1, 2, 3]),
        {"s0": {"use": "near_dedup", "input": "d", "params": {"categorical": [], "numeric": []}}},
        1,
    ),
    # a column named like a rich closing tag crashed the error printer
    (
        table("csv", **{"[/x]": [1, 2]}),
        {"s0": {"use": "filter", "input": "d", "params": {"where": '"[/x]" > "a"'}}},
        1,
    ),
    # split stratified on a list column: an `unexpected` cast error (40-example run)
    (
        table("parquet", a=[1, 2, 3], b=[[1], [], None]),
        {
            "s0": {
                "use": "split",
                "input": "d",
                "params": {"fractions": {"x": 0.5, "y": 0.5}, "stratify": "b"},
            }
        },
        1,
    ),
    # exact duplicate names in a CSV header, one row
    (
        table("csv", a=[1]) | {"names": ["a", "a"], "cols": [[1], [2]]},
        {"s0": {"use": "dedup", "input": "d"}},
        None,
    ),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", REGRESSIONS, ids=[f"r{i}" for i in range(len(REGRESSIONS))])
def test_fuzz_regressions(case: tuple[dict[str, Any], dict[str, Any], int | None]) -> None:
    data, steps, code = case
    got = check_build(
        data, {"name": "fz", "seed": 0, "sources": {"d": {"path": ""}}, "steps": steps}
    )
    assert code is None or got == code
