"""The preference step types through the runner (no store): params, outputs, errors."""

from __future__ import annotations

import polars as pl
import pytest
from preference_examples import MALFORMED, hh_transcripts, rankings, ratings, votes

from tamis.errors import DataError, SpecError
from tamis.pipelines.registry import get_step_type
from tamis.pipelines.runner import run_step


def test_preference_pairs_every_kind_with_column_mapping() -> None:
    hh = pl.concat(
        [
            hh_transcripts(6),
            pl.DataFrame([r for r, _ in MALFORMED], schema=hh_transcripts(1).schema),
        ]
    ).rename({"chosen": "good", "rejected": "bad"})
    out = run_step("preference_pairs", {"input": hh},
                   {"from": "transcripts", "columns": {"chosen": "good", "rejected": "bad"}})  # fmt: skip
    assert set(out.frames) == {"data", "sft", "prompts", "dropped"}
    assert out.frames["data"].height == 6 and out.frames["dropped"].height == len(MALFORMED)
    assert out.report["dropped_rows"]["no_markers"] == 1

    rt = ratings(5).rename({"prompt": "question"})
    out = run_step("preference_pairs", {"input": rt},
                   {"from": "ratings", "columns": {"prompt": "question"}, "strategy": "all_pairs",
                    "margin": 2, "format": "conversational"})  # fmt: skip
    assert out.frames["data"].height == 15 and "agreement" in out.frames["data"].columns
    assert out.frames["sft"].columns == ["prompt", "completion"]

    out = run_step("preference_pairs", {"input": rankings(4)}, {"from": "rankings"})
    assert out.frames["data"].height == 4
    long = pl.DataFrame({"prompt": ["p", "p"], "response": ["a", "b"], "rank": [2, 1]})
    out = run_step("preference_pairs", {"input": long}, {"from": "rankings"})
    assert out.frames["data"].row(0, named=True)["chosen"] == "b"

    out = run_step("preference_pairs", {"input": votes(10)},
                   {"from": "votes", "min_agreement": 0.9, "below": "adjudicate"})  # fmt: skip
    assert "adjudicate" in out.frames
    assert out.frames["adjudicate"].height == out.report["adjudicate"]
    assert out.frames["data"].height + out.report["adjudicate"] == 10


def test_params_are_checked_against_the_kind() -> None:
    with pytest.raises(SpecError, match="does not apply to from: transcripts"):
        run_step("preference_pairs", {"input": hh_transcripts(2)},
                 {"from": "transcripts", "margin": 1})  # fmt: skip
    with pytest.raises(SpecError, match="unknown column role 'score'"):
        run_step("preference_pairs", {"input": votes(2)},
                 {"from": "votes", "columns": {"score": "x"}})  # fmt: skip
    with pytest.raises(SpecError, match="from"):
        run_step("preference_pairs", {"input": votes(2)}, {})
    with pytest.raises(SpecError, match="Extra inputs"):
        run_step("preference_pairs", {"input": votes(2)}, {"from": "votes", "margn": 1})


def test_bad_input_errors_name_the_column() -> None:
    with pytest.raises(DataError) as err:
        run_step("preference_pairs", {"input": ratings(2).drop("response")}, {"from": "ratings"})
    assert err.value.column == "response"
    with pytest.raises(DataError, match="no valid preference pair"):
        run_step("preference_pairs", {"input": ratings(2).with_columns(pl.lit("x").alias("score"))},
                 {"from": "ratings"})  # fmt: skip
    with pytest.raises(DataError, match="needs preference pairs"):
        run_step("preference_curate", {"input": ratings(2)}, {})


def test_curate_with_eval_leakage_and_split_steps() -> None:
    pairs = run_step("preference_pairs", {"input": ratings(60)}, {"from": "ratings"}).frames["data"]
    eval_set = pairs.head(10).select(pl.col("prompt").alias("question"))
    out = run_step("preference_curate", {"input": pairs, "against": [eval_set]},
                   {"against_column": "question"})  # fmt: skip
    leaked = out.report["dropped_pairs"]["eval_leakage"]
    assert leaked >= 10
    assert not set(out.frames["data"]["prompt"]) & set(eval_set["question"])
    split = run_step("prompt_split", {"input": out.frames["data"]},
                     {"fractions": {"train": 0.5, "dev": 0.25, "test": 0.25}})  # fmt: skip
    assert set(split.frames) == {"train", "dev", "test"}
    assert sum(f.height for f in split.frames.values()) == out.frames["data"].height
    assert split.report["prompts_in_two_parts"] == 0


def test_tone_pairs_step_is_a_marked_generator() -> None:
    step = get_step_type("tone_pairs")
    assert step.inputs == ()
    out = run_step("tone_pairs", {}, {"n": 40, "noise": 0.25}, seed=4)
    assert out.report["synthetic"] is True and out.frames["data"]["synthetic"].all()
    assert out.report["label_flipped"] == out.frames["data"]["label_flipped"].sum()
    again = run_step("tone_pairs", {}, {"n": 40, "noise": 0.25}, seed=4)
    assert again.frames["data"].equals(out.frames["data"])


def test_describe_lists_the_from_param() -> None:
    desc = get_step_type("preference_pairs").describe()
    names = [f["name"] for f in desc["params"]]
    assert "from" in names and "strategy" in names
    pairs = get_step_type("preference_pairs")
    params = pairs.Params.model_validate({"from": "votes", "below": "adjudicate"})
    assert pairs().output_names(params)[-1] == "adjudicate"


def test_chains_with_the_shared_dedup_and_leakage_steps() -> None:
    # keep_both: false -> text columns only (the dedup step's examples table cannot show the
    # nested message columns yet)
    pairs = run_step(
        "preference_pairs",
        {"input": hh_transcripts(30)},
        {"from": "transcripts", "keep_both": False},
    )
    data = pairs.frames["data"]
    twice = pl.concat([data, data.head(4)])
    out = run_step("dedup", {"input": twice}, {"columns": ["prompt", "chosen", "rejected"]})
    assert out.frames["data"].height == 30
    out = run_step("near_dedup", {"input": twice}, {"column": "prompt", "threshold": 0.9})
    assert out.frames["data"].height == 30
    out = run_step("leakage", {"input": data, "against": [data.head(5)]},
                   {"columns": ["prompt"], "text": "prompt", "action": "drop"})  # fmt: skip
    assert out.frames["data"].height == 25
