"""The step contract, checked on every registered step type.

- every param has help text, and `tamis steps NAME` shows every field with its help;
- params round-trip through YAML;
- the step runs on its small example and its main output matches the schema it declares;
- a map step gives the same rows batch by batch as on the whole input; a keyed step gives the same
  rows whatever the buckets (1, 2, 3 or 7 buckets, and more buckets than rows).

Examples live in `tests/pipelines/step_examples/<group>.py` (one module per group of step types).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tamis.config import fields_without_help
from tamis.pipelines.registry import step_types
from tamis.pipelines.runner import run_step
from tamis.pipelines.steps.base import (
    KINDS,
    ROW,
    KeyedStep,
    MapStep,
    StepContext,
    merge_batches,
)
from tamis.safe_yaml import safe_load_yaml

EXAMPLES_DIR = Path(__file__).parent / "step_examples"


def _load_examples() -> dict[str, Any]:
    sys.path.insert(0, str(EXAMPLES_DIR))
    found: dict[str, Any] = {}
    for path in sorted(EXAMPLES_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"step_examples_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, example in module.EXAMPLES.items():
            assert name not in found, f"two examples for step type {name}"
            found[name] = example
    return found


EXAMPLES = _load_examples()
NAMES = sorted(step_types())


def _example(name: str) -> Any:
    if name not in EXAMPLES:
        pytest.skip(f"no example for step type {name} yet")
    example = EXAMPLES[name]
    for module in example.needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    return example


def test_every_step_type_has_an_example() -> None:
    missing = [n for n in NAMES if n not in EXAMPLES]
    assert not missing, f"add an example in tests/pipelines/step_examples/ for: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_declares_kind_and_help_on_every_param(name: str) -> None:
    step_type = step_types()[name]
    assert step_type.kind in KINDS
    assert not fields_without_help(step_type.Params), (
        f"{name}: params without help: {fields_without_help(step_type.Params)}"
    )
    assert (step_type.__doc__ or "").strip(), f"{name} has no docstring"


@pytest.mark.parametrize("name", NAMES)
def test_tamis_steps_shows_every_field_with_help(name: str) -> None:
    from typer.testing import CliRunner

    from tamis.cli import app

    result = CliRunner().invoke(app, ["steps", name, "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)["steps"][0]
    shown = {f["name"]: f["doc"] for f in described["params"]}
    model = step_types()[name].Params
    assert set(shown) == set(model.model_fields)
    for field, info in model.model_fields.items():
        assert shown[field] == info.description
    text = CliRunner().invoke(app, ["steps", name], env={"COLUMNS": "250"}).stdout
    for field in model.model_fields:
        assert field in text


@pytest.mark.parametrize("name", NAMES)
def test_params_round_trip_through_yaml(name: str) -> None:
    example = _example(name)
    model = step_types()[name].Params
    params = model.model_validate(example.params)
    text = yaml.safe_dump({"params": params.model_dump(mode="json")}, sort_keys=False)
    again = model.model_validate(safe_load_yaml(text, file="<roundtrip>")["params"])
    assert again == params


def _schema_matches(declared: pl.Schema, actual: pl.Schema) -> list[str]:
    problems = []
    if list(declared.names()) != list(actual.names()):
        problems.append(f"columns {list(actual.names())} != declared {list(declared.names())}")
    for col, dtype in declared.items():
        if col in actual and dtype != pl.Unknown and actual[col] != dtype:
            problems.append(f"{col}: {actual[col]} != declared {dtype}")
    return problems


@pytest.mark.parametrize("name", NAMES)
def test_output_matches_declared_schema(name: str, tmp_path: Path) -> None:
    example = _example(name)
    step_type = step_types()[name]
    inputs = example.inputs()
    out = run_step(name, inputs, example.params, seed=example.seed, artifacts_dir=tmp_path)
    params = step_type.Params.model_validate(example.params)
    # the main input: `input`, else the first declared input (e.g. privacy_audit's `real`)
    main = inputs.get("input", inputs.get(step_type.inputs[0]) if step_type.inputs else None)
    schema = main.schema if isinstance(main, pl.DataFrame) else pl.Schema()
    declared = step_type().output_schema(schema, params)
    assert declared is not None, f"{name} declares no output schema"
    first = step_type().output_names(params)[0]  # `data`, or a split's first part
    assert not _schema_matches(declared, out.frames[first].schema)
    json.dumps(out.report, default=str)


def _ctx(tmp_path: Path, name: str, seed: int) -> StepContext:
    return StepContext(step=name, pipeline="<test>", seed=seed, artifacts_dir=tmp_path)


def _batches(df: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [df.slice(i, size) for i in range(0, max(df.height, 1), size)]


@pytest.mark.parametrize("name", [n for n in NAMES if step_types()[n].kind == "map"])
@pytest.mark.parametrize("size", [1, 3, 17])
def test_map_step_gives_the_same_rows_batch_by_batch(name: str, size: int, tmp_path: Path) -> None:
    example = _example(name)
    step_type = step_types()[name]
    step = step_type()
    assert isinstance(step, MapStep)
    params = step_type.Params.model_validate(example.params)
    if step.kind_for(params) != "map":
        pytest.skip("these params make the step global")
    df = example.inputs()["input"]
    ctx = _ctx(tmp_path, name, example.seed)
    whole = step.run({"input": df.lazy()}, params, ctx)
    plan = step.prepare(df.lazy(), params, ctx)
    merged = merge_batches([step.map_batch(b, params, plan, ctx) for b in _batches(df, size)])
    assert merged.frame.equals(whole.frames["data"]), f"{name}: batches differ from the whole"
    assert step.finish(merged, params, plan, ctx) == whole.report


@pytest.mark.parametrize("name", [n for n in NAMES if step_types()[n].kind == "keyed"])
@pytest.mark.parametrize("buckets", [1, 2, 3, 7, 1000])
def test_keyed_step_gives_the_same_rows_whatever_the_buckets(
    name: str, buckets: int, tmp_path: Path
) -> None:
    example = _example(name)
    step_type = step_types()[name]
    step = step_type()
    assert isinstance(step, KeyedStep)
    params = step_type.Params.model_validate(example.params)
    inputs = {k: v for k, v in example.inputs().items() if isinstance(v, pl.DataFrame)}
    ctx = _ctx(tmp_path, name, example.seed)
    whole = step.run({k: v.lazy() for k, v in inputs.items()}, params, ctx)
    plan = step.prepare({k: v.lazy() for k, v in inputs.items()}, params, ctx)
    parts: dict[int, dict[str, pl.DataFrame]] = {}
    for input_name, df in inputs.items():
        indexed = df.with_row_index(ROW)
        bucket = step.key(indexed, input_name, params, plan).hash(seed=7) % buckets
        for b in range(buckets):
            rows = indexed.filter(bucket == b)
            parts.setdefault(b, {})[input_name] = rows
    results = [
        step.reduce(frames, params, plan, ctx)
        for frames in parts.values()
        if any(f.height for f in frames.values())
    ]
    merged = merge_batches(results)
    merged.frame = merged.frame.sort(ROW).drop(ROW)
    whole_frame = whole.frames["data"]  # `run` may stream: its frame may be lazy
    if isinstance(whole_frame, pl.LazyFrame):
        whole_frame = whole_frame.collect()
    assert merged.frame.equals(whole_frame), f"{name}: buckets change the rows"
    assert step.finish(merged, params, plan, ctx) == whole.report
