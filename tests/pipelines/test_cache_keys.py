"""Cache keys follow the code: a change to a step's module or its capability changes the key."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamis.pipelines import hashing
from tamis.pipelines.registry import get_step_type, step_types
from tamis.pipelines.runner import build
from tamis.pipelines.sources import reader_version
from tamis.pipelines.store import Store


@pytest.fixture(autouse=True)
def fresh_hashes() -> Iterator[None]:
    hashing.clear_code_hashes()
    yield
    hashing.clear_code_hashes()


def _patch_source(monkeypatch: pytest.MonkeyPatch, suffix: str, extra: bytes) -> None:
    """Simulate an edit of the tamis file whose path ends with `suffix`."""
    real = hashing._read_source

    def read(path: Path) -> bytes:
        data = real(path)
        return data + extra if path.as_posix().endswith(suffix) else data

    monkeypatch.setattr(hashing, "_read_source", read)
    hashing.clear_code_hashes()


def test_step_module_change_changes_only_that_steps_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = {name: t.code_version() for name, t in step_types().items()}
    _patch_source(monkeypatch, "tamis/pipelines/steps/filter.py", b"\nCHANGED = 1\n")
    after = {name: t.code_version() for name, t in step_types().items()}
    assert after["filter"] != before["filter"]
    assert get_step_type("filter").describe()["code"] == after["filter"]  # `tamis steps` shows it
    assert {n for n in before if before[n] != after[n]} == {"filter"}


def test_capability_change_changes_the_keys_of_steps_using_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # dp_ctgan's capability lives in tamis/privacy (imported inside `run`); near_dedup's in
    # tamis/curate, two levels down (near_dedup -> dedup.tabular)
    dp, near, norm = (get_step_type(n) for n in ("dp_ctgan", "near_dedup", "normalize"))
    before = dp.code_version(), near.code_version(), norm.code_version()
    _patch_source(monkeypatch, "tamis/privacy/dp/transform.py", b"\n# noise drawn elsewhere\n")
    assert dp.code_version() != before[0]
    assert (near.code_version(), norm.code_version()) == before[1:]
    _patch_source(monkeypatch, "tamis/curate/dedup/tabular.py", b"\nX = 2\n")
    assert near.code_version() != before[1] and norm.code_version() == before[2]


def test_source_reader_key_follows_the_readers_code(monkeypatch: pytest.MonkeyPatch) -> None:
    before = reader_version()
    _patch_source(monkeypatch, "tamis/pipelines/sources/csv.py", b"\nBLANK_LINES = 'skipped'\n")
    assert reader_version() != before


def test_plugin_step_and_its_own_capability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step outside tamis: its module and the modules of its package it imports are hashed."""
    pkg = tmp_path / "fakecap"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cap.py").write_text("def f(x):\n    return x + 1\n")
    (pkg / "step.py").write_text(
        textwrap.dedent(
            """
            from tamis.pipelines.steps.base import Step, StepOutput

            class Fake(Step):
                name = "fake_for_test"

                def run(self, inputs, params, ctx):
                    from .cap import f
                    return StepOutput(frames={"data": inputs["input"]}, report={"f": f(1)})
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from fakecap.step import Fake  # type: ignore[import-not-found]

    first = Fake.code_version()
    (pkg / "cap.py").write_text("def f(x):\n    return x + 2\n")
    hashing.clear_code_hashes()
    second = Fake.code_version()
    assert second != first
    (pkg / "step.py").write_text((pkg / "step.py").read_text() + "\n# edited\n")
    hashing.clear_code_hashes()
    assert Fake.code_version() not in (first, second)
    (pkg / "cap.py").write_text("def f(x):\n    return x + 1\n")
    (pkg / "step.py").write_text((pkg / "step.py").read_text().replace("\n# edited\n", ""))
    hashing.clear_code_hashes()
    assert Fake.code_version() == first
    sys.modules.pop("fakecap.step", None)
    sys.modules.pop("fakecap", None)


def test_unchanged_code_gives_the_same_keys_in_another_process() -> None:
    here = {name: t.code_version() for name, t in step_types().items()}
    here["<reader>"] = reader_version()
    code = (
        "import json\n"
        "from tamis.pipelines.registry import step_types\n"
        "from tamis.pipelines.sources import reader_version\n"
        "d = {n: t.code_version() for n, t in step_types().items()}\n"
        "d['<reader>'] = reader_version()\n"
        "print(json.dumps(d))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == here
    assert len(set(here.values())) == len(here)  # every step has its own key


def test_build_recomputes_a_step_whose_code_changed(
    pipeline_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(pipeline_dir / "pipeline.yaml", store)
    assert [s.status for s in first.steps] == ["built"] * 5
    assert first.versions["adults"]["step"]["code"] == get_step_type("filter").code_version()
    _patch_source(monkeypatch, "tamis/pipelines/steps/filter.py", b"\nCHANGED = 1\n")
    second = build(pipeline_dir / "pipeline.yaml", store)
    status = {s.name: s.status for s in second.steps}
    # the step whose code changed and everything downstream of it; not what is upstream
    assert status == {
        "clean": "cached",
        "adults": "built",
        "parts": "built",
        "small": "built",
        "boot": "built",
    }
    assert second.versions["adults"]["id"] != first.versions["adults"]["id"]
    # the same rows (the edit did not change behaviour), under a key of the new code
    assert second.versions["adults"]["content_hash"] == first.versions["adults"]["content_hash"]
    third = build(pipeline_dir / "pipeline.yaml", store)
    assert {s.status for s in third.steps} == {"cached"}


def test_sweep_keys_follow_the_recipe_and_the_step_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """TSTR lives in tamis/privacy/quality.py: a change there changes the recipes' code hash."""
    recipes = "tamis.sweeps.recipes"
    before = hashing.module_code_hash(recipes)
    _patch_source(monkeypatch, "tamis/privacy/quality.py", b"\n# tstr changed\n")
    assert hashing.module_code_hash(recipes) != before
