"""Examples for the preference and annotation step types: preference_pairs, preference_curate,
tone_pairs, prompt_split, aggregate_labels, active_learning."""

from __future__ import annotations

import polars as pl
from _example import Example

H, A = "\n\nHuman: ", "\n\nAssistant: "


def _transcripts() -> pl.DataFrame:
    rows = []
    for i in range(12):
        q = f"question number {i} about topic {i % 4}?"
        history = f"{H}hello{A}hi there" if i % 3 == 0 else ""
        rows.append(
            {
                "chosen": f"{history}{H}{q}{A}Sure! Here is a short answer {i}.",
                "rejected": f"{history}{H}{q}{A}I acknowledge receipt of your inquiry {i}.",
            }
        )
    rows.append({"chosen": "no markers here", "rejected": "none here either"})
    return pl.DataFrame(rows)


def _pairs() -> pl.DataFrame:
    """Text pairs with a duplicate, an identical pair and an empty response."""
    rows = [
        {
            "prompt": f"prompt {i % 9}",
            "chosen": f"good answer {i}" + " in detail" * (i % 3),
            "rejected": f"bad one {i}!" + " at length" * (i % 2),
        }
        for i in range(14)
    ]
    rows += [rows[0], {"prompt": "p", "chosen": "same", "rejected": "same"}]
    rows += [{"prompt": "q", "chosen": " ", "rejected": "x"}]
    return pl.DataFrame(rows)


def _votes_long() -> pl.DataFrame:
    """(item, annotator, label) with three raters, one of them noisy."""
    truth = ["spam" if i % 3 == 0 else "ham" for i in range(15)]
    rows = []
    for i, t in enumerate(truth):
        for a in range(3):
            flip = a == 2 and i % 4 == 0
            label = ("ham" if t == "spam" else "spam") if flip else t
            rows.append({"item": i, "annotator": f"r{a}", "label": label, "source": "sms"})
    return pl.DataFrame(rows)


def _items() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item": list(range(20)),
            "x": [float(i % 7) + (i % 2) * 3.0 for i in range(20)],
            "p_ham": [0.8 if i % 2 else 0.3 for i in range(20)],
            "p_spam": [0.2 if i % 2 else 0.7 for i in range(20)],
        }
    )


def _annotations() -> pl.DataFrame:
    rows = []
    for i in range(12):
        for a in range(1 + i % 3):
            label = "ham" if (i % 2) != (a == 2 and i % 5 == 0) else "spam"
            rows.append({"item": str(i), "annotator": f"r{a}", "label": label})
    return pl.DataFrame(rows)


EXAMPLES = {
    "preference_pairs": Example(
        inputs=lambda: {"input": _transcripts()}, params={"from": "transcripts"}
    ),
    "preference_curate": Example(
        inputs=lambda: {"input": _pairs()}, params={"rebalance_length": True}, seed=1
    ),
    "tone_pairs": Example(inputs=lambda: {}, params={"n": 20, "noise": 0.1}, seed=3),
    # the contract test reads the part named `data`
    "prompt_split": Example(
        inputs=lambda: {"input": _pairs()}, params={"fractions": {"train": 0.6, "test": 0.4}}
    ),
    "aggregate_labels": Example(
        inputs=lambda: {"input": _votes_long()}, params={"method": "dawid_skene"}
    ),
    "active_learning": Example(
        inputs=lambda: {"input": _items(), "annotations": _annotations()},
        params={"probs": ["p_ham", "p_spam"]},
        needs=("cleanlab",),
    ),
}
