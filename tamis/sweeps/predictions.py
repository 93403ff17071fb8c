"""Per-example predictions of a sweep cell on the fixed test set.

A classifier or TSTR cell stores what it predicted for every test row (`predictions.parquet`
beside its `result.json`): a content key of the test row (`row_key`), the true label (`y`), the
predicted label (`pred`) and one probability column per class (`p:<class>`), sorted by
`row_key`. Sorting by content makes every resampling independent of the test set's row order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PREDICTIONS = "predictions.parquet"
#: figures computed from stored predictions (a recipe maps its metric names onto these)
SCORES = ("accuracy", "precision", "recall", "f1", "auc", "average_precision")


def row_keys(frame: Any) -> np.ndarray:
    """A content key per row (hash of the row's values, columns in name order).

    Two identical rows share a key; their predictions are identical too, so the order among
    them never matters.
    """
    import polars as pl

    df = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
    df = df.select(sorted(df.columns))
    lines = df.write_ndjson().splitlines()
    return np.asarray(
        [hashlib.blake2b(line.encode(), digest_size=8).hexdigest() for line in lines], dtype=object
    )


@dataclass
class CellPredictions:
    """What one cell predicted for each test row, rows sorted by `keys`."""

    keys: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray
    classes: list[str]
    #: "binary" (positive = `positive`) or "macro" (averaged over `labels`)
    mode: str
    positive: str | None = None
    labels: list[str] = field(default_factory=list)
    #: recipe metric name -> the score it is (e.g. tstr's minority_f1 -> f1)
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        y: Any,
        pred: Any,
        proba: np.ndarray,
        classes: list[str],
        *,
        positive: str | None,
        names: dict[str, str],
        binary: bool,
    ) -> CellPredictions:
        y_arr = np.asarray([str(v) for v in y], dtype=object)
        pred_arr = np.asarray([str(v) for v in pred], dtype=object)
        order = np.argsort(np.asarray(keys, dtype=str), kind="stable")
        present = sorted(set(y_arr.tolist()))
        return cls(
            keys=np.asarray(keys, dtype=object)[order],
            y=y_arr[order],
            pred=pred_arr[order],
            proba=np.asarray(proba, dtype=np.float64)[order],
            classes=[str(c) for c in classes],
            mode="binary" if binary else "macro",
            positive=positive if binary else None,
            labels=present,
            names=dict(names),
        )

    def meta(self) -> dict[str, Any]:
        return {
            "file": PREDICTIONS,
            "rows": len(self.y),
            "classes": self.classes,
            "mode": self.mode,
            "positive": self.positive,
            "labels": self.labels,
            "names": self.names,
        }

    def save(self, directory: Path) -> dict[str, Any]:
        import polars as pl

        cols: dict[str, Any] = {
            "row_key": self.keys.astype(str),
            "y": self.y.astype(str),
            "pred": self.pred.astype(str),
        }
        # binary figures read only the positive class's score: the other columns are not kept
        kept = self.stored_classes()
        for c in kept:
            cols[f"p:{c}"] = self.proba[:, self.classes.index(c)]
        directory.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(cols).write_parquet(directory / PREDICTIONS, compression="zstd")
        return {**self.meta(), "classes": kept}

    def stored_classes(self) -> list[str]:
        if self.mode == "binary" and self.positive in self.classes:
            return [str(self.positive)]
        return list(self.classes)

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> CellPredictions:
        import polars as pl

        df = pl.read_parquet(directory / meta.get("file", PREDICTIONS))
        classes = [str(c) for c in meta["classes"]]
        return cls(
            keys=df["row_key"].to_numpy().astype(object),
            y=df["y"].to_numpy().astype(object),
            pred=df["pred"].to_numpy().astype(object),
            proba=np.column_stack([df[f"p:{c}"].to_numpy() for c in classes]).astype(np.float64),
            classes=classes,
            mode=meta["mode"],
            positive=meta.get("positive"),
            labels=[str(x) for x in meta.get("labels") or []],
            names=dict(meta.get("names") or {}),
        )

    def fingerprint(self) -> str:
        """A hash of everything the scores depend on (cells predicting alike score alike)."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.y, self.pred, self.keys):
            h.update("\x1f".join(map(str, part)).encode())
        h.update(np.ascontiguousarray(self.proba).tobytes())
        h.update(repr((self.classes, self.mode, self.positive, self.labels)).encode())
        return h.hexdigest()

    def metric(self, name: str) -> str | None:
        """The score a recipe metric is, or None when predictions cannot give it."""
        score = self.names.get(name, name)
        return score if score in SCORES else None
