"""Synthetic example inputs for every `preference_pairs` kind, built from `tone_pairs`.

For the tests: offline and seeded. The friendly reply is always the better one, so the
expected pairs are known. Like `tone_pairs`, this is generated data, not human feedback.

    from preference_examples import hh_transcripts, ratings, rankings, votes   # in tests/curate
"""

from __future__ import annotations

import random

import polars as pl

from tamis.curate.preferences import tone_pairs

H, A = "\n\nHuman: ", "\n\nAssistant: "


def tone_items(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(question, friendly reply, formal reply) triples as plain text."""
    df = tone_pairs(n, seed=seed, format="conversational")
    return [
        (p[0]["content"], c[0]["content"], r[0]["content"])
        for p, c, r in df.select("prompt", "chosen", "rejected").iter_rows()
    ]


def neutral(friendly: str) -> str:
    """A middle-quality reply: the friendly one without its greeting."""
    return friendly.split("! ", 1)[-1]


def hh_transcripts(n: int, seed: int = 0) -> pl.DataFrame:
    """n valid HH-RLHF style rows with 1 to 3 human turns (turn count cycles 1, 2, 3)."""
    items = tone_items(3 * n, seed)
    rows = []
    for i in range(n):
        turns = 1 + i % 3
        history = "".join(
            f"{H}{q}{A}{neutral(f)}" for q, f, _ in items[n + 2 * i : n + 2 * i + turns - 1]
        )
        q, f, r = items[i]
        rows.append({"chosen": f"{history}{H}{q}{A}{f}", "rejected": f"{history}{H}{q}{A}{r}"})
    return pl.DataFrame(rows)


#: malformed transcript rows and the reason each one is dropped with
MALFORMED = [
    ({"chosen": "just text, no markers", "rejected": "also no markers"}, "no_markers"),
    ({"chosen": f"{H}hi{A}hello{H}bye", "rejected": f"{H}hi{A}hello{H}bye"}, "no_final_assistant"),
    ({"chosen": f"{H}what is 2+2?{A} 4", "rejected": f"{H}what is 3+3?{A} 6"}, "prompt_mismatch"),
    ({"chosen": None, "rejected": f"{H}hi{A} hello"}, "missing_value"),
    (
        {"chosen": f"preamble{H}hi{A} a", "rejected": f"preamble{H}hi{A} b"},
        "text_before_first_turn",
    ),
    ({"chosen": f"{A}hi{A} a", "rejected": f"{A}hi{A} b"}, "no_human_turn"),
]


def ratings(n: int, seed: int = 0, annotators: int = 3) -> pl.DataFrame:
    """Per-response ratings (prompt, response, score, annotator): friendly > neutral > formal."""
    rng = random.Random(seed)
    rows = []
    for q, f, r in tone_items(n, seed):
        for resp, base in ((f, 8.0), (neutral(f), 5.0), (r, 2.0)):
            for a in range(annotators):
                score = base + rng.choice([-1.0, 0.0, 0.0, 1.0])
                rows.append(
                    {"prompt": q, "response": resp, "score": str(score), "annotator": f"u{a}"}
                )
    return pl.DataFrame(rows)


def rankings(n: int, seed: int = 0) -> pl.DataFrame:
    """(prompt, responses) with the list ordered best first."""
    return pl.DataFrame(
        [{"prompt": q, "responses": [f, neutral(f), r]} for q, f, r in tone_items(n, seed)]
    )


def votes(n: int, seed: int = 0, voters: int = 3, accuracy: float = 0.9) -> pl.DataFrame:
    """Pairwise votes (prompt, a, b, winner, annotator); a/b order random per vote."""
    rng = random.Random(seed)
    rows = []
    for q, f, r in tone_items(n, seed):
        for v in range(voters):
            a, b = (f, r) if rng.random() < 0.5 else (r, f)
            good = rng.random() < accuracy
            winner = ("a" if a == f else "b") if good else ("b" if a == f else "a")
            rows.append({"prompt": q, "a": a, "b": b, "winner": winner, "annotator": f"v{v}"})
    return pl.DataFrame(rows)
