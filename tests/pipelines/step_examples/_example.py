"""What a step example is: small inputs and params that the step runs on in a second or two."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass
class Example:
    #: input name -> frame (or a list of frames for list inputs)
    inputs: Callable[[], dict[str, pl.DataFrame | list[pl.DataFrame]]]
    params: dict[str, Any] = field(default_factory=dict)
    #: modules that must import for the example to run (else the test skips)
    needs: tuple[str, ...] = ()
    seed: int = 0


def text_frame(n: int = 40) -> pl.DataFrame:
    """Short texts with exact and near duplicates, a label and padded/missing values."""
    base = [
        "the quick brown fox jumps over the lazy dog near the river bank today",
        "a stitch in time saves nine and an apple a day keeps the doctor away",
        "to be or not to be that is the question whether tis nobler in the mind",
        "all happy families are alike each unhappy family is unhappy in its own way",
    ]
    texts = []
    for i in range(n):
        t = base[i % len(base)]
        if i % 5 == 1:
            t = t + f" extra {i}"
        if i % 7 == 3:
            t = "  " + t.upper() + " "
        texts.append(t)
    return pl.DataFrame(
        {
            "id": list(range(n)),
            "text": texts,
            "label": [("spam" if i % 3 == 0 else "ham") if i % 11 != 5 else None for i in range(n)],
            "x": [float(i % 6) if i % 9 != 4 else None for i in range(n)],
        }
    )


def tabular_frame(n: int = 120, seed: int = 0) -> pl.DataFrame:
    """A small adult-like table: numbers, categories, a binary label that depends on them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    hours = rng.integers(10, 60, n)
    edu = rng.choice(["HS", "Bachelors", "Masters", "Some-college"], n)
    sex = rng.choice(["Male", "Female"], n)
    score = (age - 40) / 20 + (hours - 35) / 15 + (edu == "Masters") * 1.0 + rng.normal(0, 1, n)
    return pl.DataFrame(
        {
            "age": age.astype("int64"),
            "hours": hours.astype("int64"),
            "education": edu,
            "sex": sex,
            "income": np.where(score > 0.5, ">50K", "<=50K"),
        }
    )
