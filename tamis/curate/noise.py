"""Label-noise injection for ablations ("corrupt 20% of the labels and compare").

    noisy, report = inject_label_noise(df, LabelNoiseConfig(label="y", rate=0.2), seed=0)
    truth = report["tables"]["noise"]          # row, true_label, noisy_label (flipped rows only)
    metrics = detection_metrics(cleaned["is_label_issue"], truth, n_rows=noisy.height)

The true labels never enter the returned data: they are kept in the `noise` table of the report,
so a later detector (e.g. `find_label_issues`) can be scored with precision/recall. With
`truth_column` a boolean column marks the flipped rows in the data itself, so the score survives
later steps that drop or reorder rows (`find_label_issues` reports it in `detection`).

Kinds:
- `uniform`: exactly `round(rate * n)` rows (of those with a non-null label) are chosen at random
  and each gets a different class drawn uniformly from the other classes.
- `class_conditional`: each row's noisy label is drawn from the row of a transition matrix
  `T[true][noisy] = P(noisy | true)`. Give `transition` as a nested mapping
  `{true: {noisy: p}}` (missing entries are 0; each row's off-diagonal mass is the flip probability
  for that class, the rest stays on the diagonal) or as a square list of lists in sorted class
  order. Without `transition`, a random matrix is drawn (seeded): every class flips with
  probability `rate`, spread over the other classes by a Dirichlet(1) draw, so some confusions are
  much more likely than others (the realistic case).

Rows whose label is null are never changed. Returns `(df_out, report)`: `report` is JSON-able
except `report["tables"]`, a dict of Polars frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.label_column import encode_labels, require_label
from tamis.curate.label_scoring import precision_recall
from tamis.errors import DataError

NoiseKind = Literal["uniform", "class_conditional"]
Transition = dict[str, dict[str, float]] | list[list[float]]


class LabelNoiseConfig(Config):
    """Which labels `inject_label_noise` corrupts, and how (the `inject_label_noise` params)."""

    label: str = Field(description="the label column (any dtype; the noisy labels keep it)")
    rate: float = Field(
        default=0.2, ge=0.0, lt=1.0, description="fraction flipped (uniform) / per-class flip rate"
    )
    kind: NoiseKind = Field(
        default="uniform", description="uniform flips, or draws from a transition matrix"
    )
    transition: Transition | None = Field(
        default=None,
        description="class_conditional: {true: {noisy: p}} or a k x k matrix (sorted classes);"
        " random (Dirichlet) from `rate` when omitted",
    )
    id_column: str | None = Field(
        default=None, description="copied into the noise table to match rows after later steps"
    )
    truth_column: str | None = Field(
        default=None,
        description="add a boolean column of this name marking the flipped rows (e.g."
        " is_injected_noise): label_issues then reports detection precision/recall",
    )


def _transition_matrix(
    classes: list[Any],
    transition: Mapping[Any, Mapping[Any, float]] | Sequence[Sequence[float]] | None,
    rate: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """T[i][j] = P(noisy class j | true class i), from `transition` or drawn from `rate`."""
    k = len(classes)
    if transition is None:
        t = np.zeros((k, k))
        for i in range(k):
            spread = rng.dirichlet(np.ones(k - 1))
            t[i, [j for j in range(k) if j != i]] = rate * spread
            t[i, i] = 1.0 - rate
        return t
    if isinstance(transition, Mapping):
        return _mapping_transition(classes, transition)
    t = np.asarray(transition, dtype=float)
    if t.shape != (k, k):
        raise DataError(
            f"transition matrix has shape {t.shape}, expected ({k}, {k}) for {k} classes",
            field="transition",
            fix=f"rows and columns in sorted class order: {', '.join(map(str, classes[:30]))}",
        )
    if (t < 0).any() or not np.allclose(t.sum(axis=1), 1.0, atol=1e-6):
        raise DataError(
            "each row of the transition matrix must be probabilities summing to 1",
            field="transition",
            fix="T[i][j] = P(noisy class j | true class i); rows sum to 1",
        )
    return t


def _mapping_transition(
    classes: list[Any], transition: Mapping[Any, Mapping[Any, float]]
) -> np.ndarray:
    """`{true: {noisy: p}}`: missing entries are 0, the rest of each row stays on the diagonal."""
    k = len(classes)
    index = {str(c): i for i, c in enumerate(classes)}

    def class_index(name: Any, where: str) -> int:
        if str(name) not in index:
            raise DataError(
                f"{where} names class {name!r}, which is not a label value",
                field="transition",
                fix=f"label values are: {', '.join(map(str, classes[:30]))}",
            )
        return index[str(name)]

    t = np.zeros((k, k))
    for true, row in transition.items():
        i = class_index(true, "transition")
        for noisy, p in row.items():
            j = class_index(noisy, f"transition[{true!r}]")
            if j != i:
                t[i, j] = float(p)
        off = t[i].sum()
        if off > 1.0 + 1e-9:
            raise DataError(
                f"transition[{true!r}] flips with total probability {off:.3f} > 1",
                field="transition",
                fix="make each class's off-diagonal probabilities sum to at most 1",
            )
        t[i, i] = 1.0 - off
    for i in range(k):
        if t[i].sum() == 0:
            t[i, i] = 1.0
    return t


def inject_label_noise(
    df: pl.DataFrame, config: LabelNoiseConfig, *, seed: int = 0
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Corrupt labels on purpose, keeping the truth in the report (never in the data).

    See `LabelNoiseConfig` for what is flipped; all randomness comes from `seed`. Rows whose
    label is null are never changed. `truth_column` is the truth: keep it out of model features.

    Returns:
        `(noisy_df, report)`; `report["tables"]["noise"]` has `row`, (`id_column`), `true_label`,
        `noisy_label` for every flipped row.
    """
    label, rate, id_column = config.label, config.rate, config.id_column
    require_label(df, label)
    if id_column is not None and id_column not in df.columns:
        raise DataError(
            f"id column '{id_column}' is not in the data",
            column=id_column,
            fix="set `id_column` to an existing column or leave it out",
        )
    if config.truth_column is not None and config.truth_column in df.columns:
        raise DataError(
            f"truth column '{config.truth_column}' already exists in the data",
            column=config.truth_column,
            field="truth_column",
            fix="choose another name (nothing in the data is overwritten)",
        )
    series = df.get_column(label)
    labelled = np.flatnonzero(series.is_not_null().to_numpy())
    classes_s, true_idx = encode_labels(series.drop_nulls())
    classes = classes_s.to_list()
    k = len(classes)
    if k < 2:
        raise DataError(
            f"label column '{label}' has {k} distinct value(s); noise needs at least 2 classes",
            column=label,
            fix="check the label column",
        )
    rng = np.random.default_rng(seed)
    matrix: np.ndarray | None = None
    if config.kind == "uniform":
        noisy_idx = true_idx.copy()
        n_flip = int(round(rate * len(labelled)))
        chosen = rng.choice(len(labelled), size=n_flip, replace=False)
        shift = rng.integers(1, k, size=n_flip)  # a different class, uniformly among the others
        noisy_idx[chosen] = (true_idx[chosen] + shift) % k
    else:
        matrix = _transition_matrix(classes, config.transition, rate, rng)
        cum = np.cumsum(matrix, axis=1)
        cum[:, -1] = 1.0
        u = rng.random(len(true_idx))
        noisy_idx = (u[:, None] > cum[true_idx]).sum(axis=1).astype(np.int64)
    flipped_local = np.flatnonzero(noisy_idx != true_idx)
    flipped_rows = labelled[flipped_local]

    full = np.zeros(df.height, dtype=np.int64)
    full[labelled] = noisy_idx
    new_label = (
        pl.select(
            pl.when(series.is_not_null()).then(classes_s.gather(pl.Series(full))).otherwise(None)
        )
        .to_series()
        .alias(label)
        .cast(series.dtype)
    )
    out = df.with_columns(new_label)
    if config.truth_column is not None:
        flag = np.zeros(df.height, dtype=bool)
        flag[flipped_rows] = True
        out = out.with_columns(pl.Series(config.truth_column, flag, dtype=pl.Boolean))

    table_cols: dict[str, Any] = {"row": pl.Series("row", flipped_rows, dtype=pl.Int64)}
    if id_column is not None:
        table_cols[id_column] = df.get_column(id_column).gather(pl.Series(flipped_rows))
    table_cols["true_label"] = classes_s.gather(pl.Series(true_idx[flipped_local]))
    table_cols["noisy_label"] = classes_s.gather(pl.Series(noisy_idx[flipped_local]))
    report: dict[str, Any] = {
        "kind": config.kind,
        "rate_requested": rate,
        "rate_actual": len(flipped_rows) / len(labelled) if len(labelled) else 0.0,
        "rows_in": df.height,
        "rows_labelled": int(len(labelled)),
        "flipped": int(len(flipped_rows)),
        "classes": [str(c) for c in classes],
        "per_class": _per_class(classes, true_idx, noisy_idx),
        "seed": seed,
    }
    if matrix is not None:
        report["transition"] = matrix.round(6).tolist()
    report["tables"] = {"noise": pl.DataFrame(table_cols)}
    return out, report


def _per_class(classes: list[Any], true_idx: np.ndarray, noisy_idx: np.ndarray) -> list[Any]:
    per_class = []
    for i, c in enumerate(classes):
        n_c = int((true_idx == i).sum())
        f_c = int(((true_idx == i) & (noisy_idx != i)).sum())
        per_class.append(
            {"class": str(c), "n": n_c, "flipped": f_c, "rate": f_c / n_c if n_c else 0.0}
        )
    return per_class


def detection_metrics(
    flagged: pl.Series | np.ndarray | Sequence[bool],
    noise_table: pl.DataFrame,
    *,
    n_rows: int,
) -> dict[str, float | int]:
    """Precision/recall/F1 of a boolean flag column against the rows `inject_label_noise` flipped.

    `flagged` must be aligned with the noisy data's rows (e.g. `is_label_issue` of
    `find_label_issues` with action flag).
    """
    mask = np.asarray(flagged, dtype=bool)
    if mask.shape != (n_rows,):
        raise DataError(
            f"flag vector has {mask.shape[0]} entries but the data has {n_rows} rows",
            fix="score the output of action: flag, which keeps every row in order",
        )
    truth = np.zeros(n_rows, dtype=bool)
    truth[noise_table.get_column("row").to_numpy()] = True
    return {**precision_recall(mask, truth), "n": n_rows}
