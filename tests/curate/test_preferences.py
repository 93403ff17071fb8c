"""Preference pairs: transcript parsing, builders per input kind, bad input, curation, splits."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from preference_examples import MALFORMED, hh_transcripts, rankings, ratings, votes

from tamis.curate.preferences import (
    curate_pairs,
    length_bias,
    pairs_config,
    pairs_from_rankings,
    pairs_from_ratings,
    pairs_from_transcripts,
    pairs_from_votes,
    parse_transcript,
    preference_pairs,
    split_by_prompt,
    to_prompts,
    to_sft,
    tone_pairs,
)
from tamis.errors import DataError, SpecError

# ---------------------------------------------------------------- transcripts


def test_transcripts_round_trip_and_turn_order() -> None:
    df = hh_transcripts(30)
    res = pairs_from_transcripts(df)
    out = res.pairs
    assert out.height == 30 and res.report["dropped_rows"] == {}
    # round trip: prompt + response gives back the original strings, exactly
    src = df.with_row_index("source_row").with_columns(pl.col("source_row").cast(pl.Int64))
    joined = out.join(src, on="source_row", suffix="_orig")
    assert (joined["prompt"] + joined["chosen"]).to_list() == joined["chosen_orig"].to_list()
    assert (joined["prompt"] + joined["rejected"]).to_list() == joined["rejected_orig"].to_list()
    # every earlier turn is in the prompt, in order, alternating user/assistant, ending on user
    for row in joined.iter_rows(named=True):
        msgs = row["prompt_messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2) + ["user"]
        pos = 0
        for m in msgs:
            found = row["chosen_orig"].find(m["content"], pos)
            assert found >= pos, "a turn is missing or out of order"
            pos = found + len(m["content"])
        assert row["n_turns"] == (len(msgs) + 1) // 2
    assert res.report["turns_per_prompt"]["histogram"] == {"1": 10, "2": 10, "3": 10}


_text = st.text(alphabet=st.characters(blacklist_characters="\r"), max_size=30).filter(
    lambda s: "Human:" not in s and "Assistant:" not in s
)


@settings(max_examples=150, deadline=None)
@given(turns=st.lists(st.tuples(_text, _text), min_size=1, max_size=4), last=_text)
def test_parse_round_trips_any_conversation(turns: list[tuple[str, str]], last: str) -> None:
    text = "".join(f"\n\nHuman:{u}\n\nAssistant:{a}" for u, a in turns)
    parsed = parse_transcript(text + "\n\nHuman:" + last + "\n\nAssistant:" + " reply")
    assert not isinstance(parsed, str)
    assert parsed.prompt + parsed.response == text + "\n\nHuman:" + last + "\n\nAssistant: reply"
    contents = [c for u, a in turns for c in (u, a)] + [last]
    assert [m["content"] for m in parsed.messages] == [c.strip() for c in contents]


def test_malformed_transcripts_counted_per_reason() -> None:
    good = hh_transcripts(5)
    bad = pl.DataFrame(
        [row for row, _ in MALFORMED], schema={"chosen": pl.String, "rejected": pl.String}
    )
    res = pairs_from_transcripts(pl.concat([good, bad]))
    expected: dict[str, int] = {}
    for _, reason in MALFORMED:
        expected[reason] = expected.get(reason, 0) + 1
    assert res.report["dropped_rows"] == expected
    assert res.report["rows_in"] == 5 + len(MALFORMED) and res.report["pairs_out"] == 5
    assert sorted(res.dropped["source_row"].to_list()) == list(range(5, 5 + len(MALFORMED)))


def test_nothing_valid_left_is_a_clear_error() -> None:
    bad = pl.DataFrame(
        [row for row, _ in MALFORMED], schema={"chosen": pl.String, "rejected": pl.String}
    )
    with pytest.raises(DataError, match="no valid preference pair") as err:
        pairs_from_transcripts(bad)
    assert "no_markers: 1" in str(err.value) and "prompt_mismatch: 1" in str(err.value)


def test_missing_column_names_the_column_and_the_fix() -> None:
    with pytest.raises(DataError) as err:
        pairs_from_transcripts(pl.DataFrame({"chosen": ["x"], "other": ["y"]}))
    assert err.value.column == "rejected" and "columns: {rejected:" in (err.value.fix or "")
    with pytest.raises(DataError, match="'score'"):
        pairs_from_ratings(ratings(3).drop("score"))


def test_conversational_format_keeps_text_beside_messages() -> None:
    res = pairs_from_transcripts(hh_transcripts(6), format="conversational")
    row = res.pairs.row(4, named=True)
    assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    assert row["prompt_text"] + row["chosen_text"] == hh_transcripts(6)["chosen"][4]


# ---------------------------------------------------------------- ratings, rankings, votes


def test_ratings_best_worst_with_bad_scores_and_agreement() -> None:
    df = ratings(20)
    df = pl.concat(
        [
            df,
            pl.DataFrame({"prompt": ["p", "p", "p"], "response": ["x", "y", "z"],
                          "score": ["n/a", None, "7"], "annotator": ["u0"] * 3}),
        ]
    )  # fmt: skip
    res = pairs_from_ratings(df, columns={"annotator": "annotator"})
    rep = res.report
    assert rep["dropped_rows"] == {"missing_score": 1, "non_numeric_score": 1}
    assert rep["dropped_prompts"] == {"single_response": 1}  # "p" has one usable response
    friendly_won = [c.split("! ")[0] + "!" in c for c in res.pairs["chosen"]]
    assert all(friendly_won) and (res.pairs["score_gap"] > 0).all()
    assert rep["agreement"]["mean"] > 0.9 and rep["agreement"]["annotators"] == 3
    # the formal reply is the worst and the longest: the length bias shows
    assert rep["length_bias"]["chosen_longer_share"] == 0.0 and rep["length_bias"]["biased"]


def test_builders_take_the_step_config_whole() -> None:
    df = ratings(8)
    config = pairs_config("ratings", strategy="all_pairs", columns={"annotator": "annotator"})
    whole = preference_pairs(df, config, seed=2)
    assert whole.pairs.equals(pairs_from_ratings(df, config, seed=2).pairs)
    assert whole.pairs.equals(
        pairs_from_ratings(
            df, strategy="all_pairs", columns={"annotator": "annotator"}, seed=2
        ).pairs
    )
    with pytest.raises(DataError, match="from: ratings"):
        pairs_from_votes(votes(3), config)
    with pytest.raises(SpecError, match="strategy"):
        pairs_from_ratings(df, strategy="best_three")


def test_ratings_strategies_margin_and_ties() -> None:
    df = pl.DataFrame({"prompt": ["p"] * 3 + ["q"] * 2, "response": ["a", "b", "c", "d", "e"],
                       "score": [9, 5, 4, 3, 3]})  # fmt: skip
    allp = pairs_from_ratings(df, strategy="all_pairs", ties="drop")
    assert {(r["chosen"], r["rejected"]) for r in allp.pairs.iter_rows(named=True)} == {
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    }
    assert allp.report["dropped_pairs"] == {"tie": 1}
    margin = pairs_from_ratings(df, strategy="all_pairs", margin=2)
    assert margin.report["dropped_pairs"] == {"below_margin": 1, "tie": 1}
    kept = pairs_from_ratings(df, ties="keep")
    assert kept.report["ties_kept"] == 1 and to_sft(kept.pairs).height == 1
    rnd = pairs_from_ratings(df, strategy="best_random", seed=3)
    assert rnd.pairs.filter(pl.col("prompt") == "p")["chosen"].to_list() == ["a"]
    maj = pairs_from_ratings(
        pl.DataFrame(
            {"prompt": ["p"] * 4, "response": ["a", "a", "a", "b"], "score": [1, 5, 5, 2]}
        ),
        aggregate="majority",
    )
    assert maj.pairs["chosen"].to_list() == ["a"] and maj.pairs["chosen_score"][0] == 5.0
    with pytest.raises(DataError, match="no valid preference pair"):
        pairs_from_ratings(df.with_columns(pl.lit("bad").alias("score")))


def test_rankings_list_and_long_form() -> None:
    res = pairs_from_rankings(rankings(10), strategy="all_pairs")
    assert res.pairs.height == 30 and (res.pairs["chosen_rank"] < res.pairs["rejected_rank"]).all()
    long = pl.DataFrame({"prompt": ["p", "p", "p", "q"], "response": ["a", "b", "c", "d"],
                         "rank": ["2", "1", "x", "1"]})  # fmt: skip
    res = pairs_from_rankings(long, columns={"rank": "rank"})
    assert res.pairs.select("chosen", "rejected").row(0) == ("b", "a")
    assert res.report["dropped_rows"] == {"non_numeric_rank": 1}
    assert res.report["dropped_prompts"] == {"single_response": 1}
    with pytest.raises(DataError, match="must hold lists"):
        pairs_from_rankings(pl.DataFrame({"prompt": ["p"], "responses": ["a"]}))


def test_votes_majority_agreement_and_adjudication() -> None:
    df = votes(40, voters=3, accuracy=0.85)
    extra = pl.DataFrame({"prompt": ["q", "q"], "a": ["x", "y"], "b": ["y", "x"],
                          "winner": ["a", "a"], "annotator": ["v0", "v1"]})  # fmt: skip
    res = pairs_from_votes(pl.concat([df, extra]), min_agreement=0.9, below="adjudicate")
    assert res.adjudicate is not None
    # with 3 voters, agreement is 1 or 2/3: the 2/3 pairs go to adjudication
    assert (res.pairs["agreement"] == 1.0).all()
    assert (
        res.adjudicate.filter(pl.col("reason") == "low_agreement").height
        == res.report["dropped_pairs"].get("low_agreement", 0)
        > 0
    )
    # x/y in both orders with one vote each: no majority, pooled across the a/b order
    assert res.adjudicate.filter(pl.col("prompt") == "q")["reason"].to_list() == ["no_majority"]
    assert res.report["agreement"]["votes"] == df.height + 2
    assert res.report["agreement"]["fleiss_kappa"] is not None
    friendly = res.pairs["chosen"].str.len_chars() < res.pairs["rejected"].str.len_chars()
    assert friendly.all()  # unanimous pairs chose the friendly reply


def test_votes_bad_rows_counted() -> None:
    df = pl.DataFrame({"prompt": ["p", "p", "p", None, "p"], "a": ["x", "x", "x", "x", "z"],
                       "b": ["y", "y", "y", "y", "z"], "winner": ["a", "model_a", "??", "a", "a"],
                       "annotator": ["1", "1", "2", "3", "4"]})  # fmt: skip
    res = pairs_from_votes(df)
    assert res.report["dropped_rows"] == {
        "duplicate_vote": 1, "identical_responses": 1, "invalid_winner": 1, "missing_value": 1
    }  # fmt: skip
    assert res.pairs.select("chosen", "rejected").row(0) == ("x", "y")


# ---------------------------------------------------------------- curation, formats, split


def test_curate_drops_identical_empty_duplicates_and_rebalances() -> None:
    base = tone_pairs(200, noise=0.3, seed=1).drop("synthetic", "label_flipped", "topic")
    bad = pl.DataFrame({"prompt": ["P1", "P2", "", "P4"], "chosen": [" same", " x", " y", "  "],
                        "rejected": ["same ", " y", " z", " w"]})  # fmt: skip
    df = pl.concat([base, base.head(7), bad])
    res = curate_pairs(df, rebalance_length=True, seed=0)
    dp = res.report["dropped_pairs"]
    assert dp["identical"] == 1 and dp["empty_prompt"] == 1 and dp["empty_response"] == 1
    assert dp["duplicate_pair"] == 7
    before, after = res.report["length_bias_before"], res.report["length_bias"]
    assert before["biased"] and before["chosen_longer_share"] < 0.45
    assert after["chosen_longer_share"] == pytest.approx(0.5, abs=0.01) and not after["biased"]
    assert res.pairs.height + sum(dp.values()) == df.height


def test_length_bias_figures() -> None:
    df = pl.DataFrame({"prompt": ["p"] * 4, "chosen": ["aaaa", "aaaa", "a", "aa"],
                       "rejected": ["a", "aa", "aaaa", "aa"]})  # fmt: skip
    lb = length_bias(df)
    assert lb["chosen_longer_share"] == 0.5 and lb["equal_length_share"] == 0.25
    assert lb["length_only_accuracy"] == pytest.approx(0.625)
    # d = 3, 2, -3, 0: mean(d) / sqrt(mean(d^2)) = 0.5 / sqrt(5.5)
    assert lb["length_corr"] == pytest.approx(0.5 / 5.5**0.5)
    matched = length_bias(tone_pairs(400, length_matched=True))
    assert 0.4 < matched["chosen_longer_share"] < 0.6


def test_split_by_prompt_never_shares_a_prompt() -> None:
    pairs = pairs_from_ratings(ratings(150), strategy="all_pairs").pairs
    parts, rep = split_by_prompt(pairs, fractions={"train": 0.8, "test": 0.2}, seed=0)
    train, test = set(parts["train"]["prompt"]), set(parts["test"]["prompt"])
    assert not train & test and rep["prompts_in_two_parts"] == 0
    assert parts["train"].height + parts["test"].height == pairs.height
    assert 0.6 < len(train) / (len(train) + len(test)) < 0.95
    # stable: a prompt's part does not depend on the other rows
    half, _ = split_by_prompt(
        pairs.head(pairs.height // 2), fractions={"train": 0.8, "test": 0.2}, seed=0
    )
    assert set(half["test"]["prompt"]) <= test
    with pytest.raises(DataError, match="fractions"):
        split_by_prompt(pairs, fractions={"train": 0.5, "test": 0.6})


def test_sft_and_prompt_outputs() -> None:
    res = pairs_from_transcripts(hh_transcripts(9), format="conversational")
    sft = to_sft(res.pairs)
    assert sft.columns == ["prompt", "completion"] and sft.height == 9
    assert sft["completion"][0][0]["role"] == "assistant"
    prompts = to_prompts(pl.concat([res.pairs, res.pairs]))
    assert prompts.height == 9 and (prompts["n_pairs"] == 2).all()


def test_tone_pairs_seeded_noise_and_marked_synthetic() -> None:
    a, b = tone_pairs(300, noise=0.2, seed=5), tone_pairs(300, noise=0.2, seed=5)
    assert a.equals(b) and not a.equals(tone_pairs(300, noise=0.2, seed=6))
    assert a["synthetic"].all() and 0.12 < a["label_flipped"].mean() < 0.28  # type: ignore[operator]
    clean = a.filter(~pl.col("label_flipped"))
    assert (clean["chosen"].str.len_chars() < clean["rejected"].str.len_chars()).all()
    assert a["topic"].n_unique() == 6 and a["prompt"].n_unique() > 150
    with pytest.raises(Exception, match="noise"):
        tone_pairs(10, noise=1.5)


def test_transcripts_given_as_message_lists() -> None:
    def conv(*turns: tuple[str, str]) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in turns]

    hist = (("user", "hi"), ("assistant", "hello"), ("user", "how are you?"))
    df = pl.DataFrame(
        {
            "chosen": [
                conv(*hist, ("assistant", "great, thanks!")),
                conv(("user", "a"), ("assistant", "b")),
                conv(("user", "q"), ("assistant", "x"), ("user", "more")),
            ],
            "rejected": [
                conv(*hist, ("assistant", "go away")),
                conv(("user", "DIFFERENT"), ("assistant", "c")),
                conv(("user", "q"), ("assistant", "y"), ("user", "more")),
            ],
        }
    )
    res = pairs_from_transcripts(df, format="conversational")
    assert res.report["dropped_rows"] == {"no_final_assistant": 1, "prompt_mismatch": 1}
    row = res.pairs.row(0, named=True)
    assert row["prompt"] == conv(*hist) and row["chosen"] == conv(("assistant", "great, thanks!"))
    assert (
        row["prompt_text"]
        == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:"
    )
    assert row["n_turns"] == 2
    with pytest.raises(DataError, match="both be text or both be lists"):
        pairs_from_transcripts(df.with_columns(pl.lit("x").alias("rejected")))


def test_curate_and_split_work_on_conversational_pairs() -> None:
    pairs = pairs_from_transcripts(hh_transcripts(40), format="conversational").pairs
    res = curate_pairs(pl.concat([pairs, pairs.head(5)]))
    assert res.report["dropped_pairs"] == {"duplicate_pair": 5} and res.pairs.height == 40
    parts, rep = split_by_prompt(res.pairs, fractions={"train": 0.7, "test": 0.3})
    assert rep["prompts_in_two_parts"] == 0 and sum(p.height for p in parts.values()) == 40
