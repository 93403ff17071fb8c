"""leakage under the bounded engine: the input streams past the eval sets held in memory, with the
in-memory output, report and tables whatever the batches and parts; figures checked against
pure-Python sets; over-limit eval sets and target leakage refused before the step starts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tamis.cli import app
from tamis.curate.leakage import LeakageConfig, find_leakage
from tamis.errors import StepError
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import parse_size
from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
from tamis.pipelines.steps.base import StepContext
from tamis.pipelines.steps.leakage import Leakage
from tamis.pipelines.store import Store

SMS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sms_spam"
SMS_FILE = SMS / "SMSSpamCollection.tsv"
needs_sms = pytest.mark.skipif(not SMS_FILE.exists(), reason="shared datasets are not here")

VOCAB = [f"w{i}" for i in range(300)]


def _words(rng: np.random.Generator, lo: int, hi: int) -> list[str]:
    return [str(w) for w in rng.choice(VOCAB, int(rng.integers(lo, hi)))]


def _planted(n: int, n_eval: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An input of random word texts and an eval set planted with exact copies, near copies
    (one word changed in a long text), texts sharing one 13-gram, shared groups and later times;
    plus empty, null and short texts on both sides."""
    rng = np.random.default_rng(seed)
    texts: list[str | None] = [" ".join(_words(rng, 30, 90)) for _ in range(n)]
    for i in rng.choice(n, n // 20, replace=False):
        texts[int(i)] = None if i % 2 else ("" if i % 3 else "w1 w2")
    evals: list[str | None] = []
    for k in range(n_eval):
        src = texts[int(rng.integers(n))] or "w7 w8 w9"
        kind = k % 6
        if kind == 0:  # exact copy
            evals.append(src)
        elif kind == 1:  # near copy: one word of a long text changed
            words = src.split()
            words[len(words) // 2] = "changed"
            evals.append(" ".join(words))
        elif kind == 2:  # one shared 13-gram inside new words
            words = src.split()
            evals.append(" ".join(_words(rng, 10, 20) + words[:13] + _words(rng, 10, 20)))
        elif kind == 3:
            evals.append(None if k % 4 else "")
        else:
            evals.append(" ".join(_words(rng, 20, 60)))
    df = pl.DataFrame(
        {
            "text": texts,
            "label": rng.integers(0, 2, n),
            "user": rng.integers(0, n // 3, n),
            "t": rng.integers(0, 1000, n),
        }
    )
    ev = pl.DataFrame(
        {
            "text": evals,
            "label": rng.integers(0, 2, n_eval),
            "user": rng.integers(n // 4, n, n_eval),
            "t": rng.integers(800, 2000, n_eval),
        }
    )
    return df, ev


def _ctx(tmp_path: Path) -> StepContext:
    (tmp_path / "art").mkdir(exist_ok=True)
    return StepContext(step="lk", pipeline="p", seed=5, artifacts_dir=tmp_path / "art")


def _both(
    tmp_path: Path,
    df: pl.DataFrame,
    evals: list[pl.DataFrame],
    params: LeakageConfig,
    memory: str,
    batch_rows: int | None,
    part_rows: int | None = None,
) -> tuple[tuple[str, Any, Any], tuple[str, Any, Any], BoundedEngine]:
    """(parts hash, report, tables) in memory and bounded."""
    inputs: dict[str, Any] = {"input": df.lazy(), "against": [e.lazy() for e in evals]}
    whole = Leakage().run(inputs, params, _ctx(tmp_path))
    data = whole.frames["data"]
    assert isinstance(data, pl.DataFrame)
    mem = parts_hash(write_frame_parts(data, tmp_path / "mem", max_rows=part_rows or 10**9))
    engine = BoundedEngine(
        memory_limit=parse_size(memory),
        spill_root=tmp_path / "spill",
        batch_rows=batch_rows,
        part_max_rows=part_rows,
    )
    parts, out = Leakage().run_bounded(engine, inputs, params, _ctx(tmp_path), tmp_path / "b")
    return (mem, whole.report, whole.tables), (parts_hash(parts), out.report, out.tables), engine


def _same_tables(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].equals(b[k]), k


PLANTED: dict[str, Any] = dict(
    text="text", ngram=13, near_ngram=5, near_threshold=0.8, group="user", time="t"
)


@pytest.mark.parametrize("action", ["drop", "flag", "report"])
@pytest.mark.parametrize(("batch_rows", "part_rows"), [(1, 40), (7, 100), (1000, None)])
def test_bounded_equals_in_memory_on_planted_overlaps(
    tmp_path: Path, action: Any, batch_rows: int, part_rows: int | None
) -> None:
    df, ev = _planted(240 if batch_rows == 1 else 900, 120)
    params = LeakageConfig(
        **PLANTED, columns=["text"], label="label", action=action, max_table_rows=50
    )
    mem, bounded, engine = _both(
        tmp_path, df, [ev, ev.head(40)], params, "8MB", batch_rows, part_rows
    )
    assert bounded[0] == mem[0]
    assert bounded[1] == mem[1]
    _same_tables(mem[2], bounded[2])
    assert engine.stats.batch_rows == batch_rows
    assert engine.stats.parts_written > (1 if part_rows else 0)
    rep = bounded[1]["against"]["against_0"]
    for check in ("exact", "ngram", "near", "group", "temporal"):
        assert check in rep
    # every check found something, and the capped tables were capped
    assert rep["exact"]["input_rows"] > 0 and rep["near"]["pairs"] > 0
    assert bounded[2]["against_0_ngram"].height == 50


def _grams(text: str | None, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[^\W_]+", (text or "").lower())
    if 0 < len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_planted_figures_equal_pure_python(tmp_path: Path) -> None:
    df, ev = _planted(700, 150, seed=3)
    params = LeakageConfig(**PLANTED, columns=["text"], action="drop")
    _, (_, report, tables), _ = _both(tmp_path, df, [ev], params, "4MB", 13)
    rep = report["against"]["against_0"]
    train, test = df["text"].to_list(), ev["text"].to_list()
    # exact: the same text (nulls equal nulls)
    eval_texts = set(test)
    assert rep["exact"]["input_rows"] == sum(t in eval_texts for t in train)
    assert rep["exact"]["eval_rows"] == sum(t in set(train) for t in test)
    # 13-gram contamination
    ga = [_grams(t, 13) for t in train]
    gb = [_grams(t, 13) for t in test]
    all_a = set().union(*ga)
    all_b = set().union(*gb)
    assert rep["ngram"]["contaminated_eval_items"] == sum(bool(g & all_a) for g in gb) > 0
    assert rep["ngram"]["input_rows_carrying"] == sum(bool(g & all_b) for g in ga)
    assert rep["ngram"]["eval_items"] == sum(bool(g) for g in gb)
    # near: every cross pair whose 5-gram sets have Jaccard >= 0.8
    na, nb = [_grams(t, 5) for t in train], [_grams(t, 5) for t in test]
    pairs = {
        (i, j)
        for i, a in enumerate(na)
        for j, b in enumerate(nb)
        if a and b and len(a & b) / len(a | b) >= 0.8
    }
    assert rep["near"]["pairs"] == len(pairs) == tables["against_0_near"].height
    assert set(tables["against_0_near"].select("row", "eval_row").rows()) == pairs
    assert rep["near"]["input_rows"] == len({i for i, _ in pairs})
    # groups and time
    shared = set(df["user"].to_list()) & set(ev["user"].to_list())
    assert rep["group"]["shared_groups"] == len(shared)
    assert rep["group"]["input_rows"] == sum(u in shared for u in df["user"].to_list())
    start = min(ev["t"].to_list())
    later = sum(t > start for t in df["t"].to_list())
    assert rep["temporal"]["input_rows_after_eval_start"] == later
    leaked = {
        i
        for i, t in enumerate(train)
        if t in eval_texts or ga[i] & all_b or df["user"][i] in shared or df["t"][i] > start
    } | {i for i, _ in pairs}
    assert report["leaked_rows"] == len(leaked) == report["removed"]


@needs_sms
@pytest.mark.parametrize("batch_rows", [7, 1000])
def test_sms_spam_bounded_equals_in_memory(tmp_path: Path, batch_rows: int) -> None:
    sms = pl.read_csv(
        SMS_FILE, separator="\t", has_header=False, new_columns=["Label", "SMS"], quote_char=None
    )
    sms = sms.with_row_index("id")
    train = sms.filter(pl.col("id") % 4 != 0).drop("id")
    test = sms.filter(pl.col("id") % 4 == 0).drop("id")
    params = LeakageConfig(text="SMS", label="Label", ngram=8, action="flag")
    mem, bounded, _ = _both(tmp_path, train, [test], params, "32MB", batch_rows, 1500)
    assert bounded[0] == mem[0] and bounded[1] == mem[1]
    _same_tables(mem[2], bounded[2])
    rep = bounded[1]["against"]["against_0"]
    # exact (Label, SMS) overlap against plain Python sets
    pairs = set(test.select("Label", "SMS").rows())
    assert (
        rep["exact"]["input_rows"]
        == sum(r in pairs for r in train.select("Label", "SMS").rows())
        > 0
    )
    assert rep["near"]["pairs"] > 0 and "target_leakage" in bounded[1]


def test_an_eval_set_over_the_limit_is_refused_before_the_step_starts(tmp_path: Path) -> None:
    df, ev = _planted(200, 30_000)
    engine = BoundedEngine(memory_limit=parse_size("2MB"), spill_root=tmp_path / "spill")
    inputs: dict[str, Any] = {"input": df.lazy(), "against": [ev.lazy()]}
    with pytest.raises(StepError) as err:
        Leakage().run_bounded(
            engine, inputs, LeakageConfig(text="text"), _ctx(tmp_path), tmp_path / "o"
        )
    text = str(err.value)
    assert "step 'lk'" in text and "eval sets (`against`) in memory" in text
    assert "30,000 eval rows" in text and "over half the memory limit of 2.0 MB" in text
    assert "partitioned join) are not supported" in text and "--memory-limit" in text
    assert not (tmp_path / "o").exists()


def test_target_leakage_over_the_limit_is_refused_and_fits_without_the_text(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    n = 40_000
    df = pl.DataFrame({"x": rng.random(n), "y": rng.integers(0, 2, n), "z": rng.random(n)})
    ev = df.head(50)
    inputs: dict[str, Any] = {"input": df.lazy(), "against": [ev.lazy()]}
    params = LeakageConfig(label="y")
    engine = BoundedEngine(memory_limit=parse_size("1.2MB"), spill_root=tmp_path / "spill")
    with pytest.raises(StepError) as err:
        Leakage().run_bounded(engine, inputs, params, _ctx(tmp_path), tmp_path / "o")
    text = str(err.value)
    assert "label and 2 feature column(s) of its whole input" in text and "40,000 rows" in text
    assert "target_auc_threshold: null" in text and "fewer `features`" in text
    # only the label and its features are held: a long text column beside them does not count
    wide = df.with_columns(pl.lit("word " * 200).alias("body"))
    params = LeakageConfig(label="y", text="body", near_threshold=None, columns=["x"])
    mem, bounded, _ = _both(tmp_path, wide, [wide.head(50)], params, "12MB", 5000)
    assert bounded == mem[:2] + (bounded[2],) and bounded[1]["target_leakage"]["features"]


def test_cli_build_under_a_small_limit_equals_the_in_memory_check(tmp_path: Path) -> None:
    """normalize -> dedup -> near_dedup -> leakage against a held-out set, `tamis build` under
    --memory-limit 8MB with batches far smaller than the input."""
    df, ev = _planted(3000, 300, seed=9)
    df.write_parquet(tmp_path / "corpus.parquet")
    ev.write_parquet(tmp_path / "held.parquet")
    spec = {
        "name": "c",
        "seed": 2,
        "sources": {
            "corpus": {"path": str(tmp_path / "corpus.parquet")},
            "held": {"path": str(tmp_path / "held.parquet")},
        },
        "steps": {
            "clean": {"use": "normalize", "input": "corpus"},
            "unique": {"use": "dedup", "input": "clean", "params": {"columns": ["text"]}},
            "near": {"use": "near_dedup", "input": "unique", "params": {"column": "text"}},
            "leak": {
                "use": "leakage",
                "input": "near",
                "against": ["held"],
                "params": {**PLANTED, "columns": ["text"], "action": "drop"},
            },
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    st = str(tmp_path / "st")
    res = CliRunner().invoke(
        app, ["build", str(tmp_path / "c.yaml"), "--store", st, "--memory-limit", "8MB", "--json"]
    )
    assert res.exit_code == 0, res.output
    # the leakage step (the last one) streamed its ~3,000 rows in several batches
    assert json.loads(res.stdout)["engine"]["batch_rows"] < 1000
    store = Store(Path(st))
    report = store.manifest("c/leak")["report"]
    near = store.read("c/near")
    params = LeakageConfig(**PLANTED, columns=["text"], action="drop")
    out, expected, _ = find_leakage(near, {"against_0": ev}, params, seed=2)
    for key, value in expected.items():
        assert report[key] == value, key
    assert store.read("c/leak").equals(out)
    assert report["removed"] > 0 and report["rows_in"] == near.height


def test_the_eval_set_is_shingled_in_chunks_without_changing_its_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tamis.curate import contamination
    from tamis.curate.dedup.shingles import shingle

    _, ev = _planted(50, 400, seed=4)
    for kwargs in ({"unit": "word", "ngram": 13, "as_sets": False}, {"unit": "word", "ngram": 5}):
        whole = shingle(ev["text"], **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(contamination, "EVAL_CHUNK_BYTES", 700)
        chunked = contamination.shingle_eval(ev["text"], **kwargs)
        monkeypatch.undo()
        assert np.array_equal(whole.offsets, chunked.offsets)
        assert np.array_equal(whole.hashes, chunked.hashes)
        assert np.array_equal(whole.n_tokens, chunked.n_tokens)


def test_an_eval_set_without_ngrams_contaminates_nothing(tmp_path: Path) -> None:
    df, _ = _planted(60, 10)
    ev = pl.DataFrame({"text": ["", None, "   "], "label": [0, 1, 0]})
    params = LeakageConfig(text="text", columns=["label"], near_threshold=0.8, action="flag")
    mem, bounded, _ = _both(tmp_path, df, [ev], params, "4MB", 7)
    assert bounded[:2] == mem[:2]
    _same_tables(mem[2], bounded[2])
    rep = bounded[1]["against"]["against_0"]
    assert rep["ngram"]["contaminated_eval_items"] == rep["ngram"]["eval_items"] == 0
    assert rep["near"]["pairs"] == 0
