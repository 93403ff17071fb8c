"""Features and models shared by `label_issues` and `datalab`: out-of-fold predicted probabilities.

Defaults (all scikit-learn, built inside the functions so importing this module is cheap):
- tabular, `model="logreg"` (the `auto` choice): numeric columns median-imputed with a missing
  indicator and standardised; string/categorical/boolean columns one-hot encoded (nulls become
  their own category, at most `max_categories` levels per column); `LogisticRegression`.
- tabular, `model="gbm"`: `HistGradientBoostingClassifier` with native missing-value and
  categorical support (categoricals ordinal-encoded, at most `max_categories` levels).
- text (`text=` a column): TF-IDF (word 1-2 grams, sublinear tf, min_df 2 from 1,000 rows) +
  `LogisticRegression`; any
  `features` columns are added beside the TF-IDF block.
- `embedding_model=` a local directory of a (sentence-)transformer: mean-pooled embeddings of the
  text column + `LogisticRegression` (needs `pip install 'tamis[train]'`; nothing is downloaded).

NaN handling (documented): NaN/null numeric features are imputed (logreg) or handled natively
(gbm); null text is treated as the empty string; infinite values are an error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from tamis.errors import DataError, MissingDependencyError, StepError
from tamis.tabular import column_encoder, make_classifier

ModelName = Literal["auto", "logreg", "gbm"]


@dataclass
class FeatureSpec:
    """Which columns feed the model, resolved against a frame."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: str | None = None

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical + ([self.text] if self.text else [])


ISSUE_PREFIXES = ("is_", "label_quality_score", "suggested_label")


def resolve_features(
    df: pl.DataFrame,
    *,
    label: str | None,
    features: list[str] | None,
    text: str | None,
    exclude: tuple[str, ...] = (),
    where: str = "label_issues",
) -> FeatureSpec:
    """Split the feature columns into numeric / categorical (+ text); check they exist."""
    if text is not None and text not in df.columns:
        raise StepError(
            f"text column '{text}' is not in the data (columns: {', '.join(df.columns[:20])})",
            step=where,
            column=text,
            fix="set `text` to the column holding the text",
        )
    if text is not None:
        tdt = df.schema[text]
        if not (tdt in (pl.String, pl.Categorical, pl.Null) or isinstance(tdt, pl.Enum)):
            raise StepError(
                f"text column '{text}' has dtype {tdt}, not text",
                step=where,
                column=text,
                field="text",
                fix="name a string column in `text` (or cast it first, e.g. a normalize step)",
            )
    if features is None:
        if text is not None:
            cols: list[str] = []
        else:
            cols = [
                c
                for c in df.columns
                if c not in (label, *exclude)
                and not c.startswith("is_")
                and not c.endswith("_score")
                and c != "suggested_label"
            ]
    else:
        missing = [c for c in features if c not in df.columns]
        if missing:
            raise StepError(
                f"feature column(s) {', '.join(missing)} not in the data",
                step=where,
                column=missing[0],
                fix=f"columns are: {', '.join(df.columns[:30])}",
            )
        cols = list(dict.fromkeys(c for c in features if c != text))  # a repeat counts once
    if label is not None and label in cols:
        raise StepError(
            f"the label column '{label}' is also listed as a feature",
            step=where,
            column=label,
            fix="remove it from `features`",
        )
    spec = FeatureSpec(text=text)
    for c in cols:
        dtype = df.schema[c]
        if dtype.is_numeric():
            spec.numeric.append(c)
        elif dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum):
            spec.categorical.append(c)
        else:
            raise StepError(
                f"feature column '{c}' has dtype {dtype}, which the default model cannot use",
                step=where,
                column=c,
                fix="list usable columns in `features`, or give `pred_probs`",
            )
    if not spec.columns:
        raise StepError(
            "no feature columns to fit a model on",
            step=where,
            fix="give `features`, `text`, or a precomputed `pred_probs` column",
        )
    if spec.numeric:
        bad = [
            c
            for c in spec.numeric
            if df.schema[c].is_float() and bool(df.select(pl.col(c).is_infinite().any()).item())
        ]
        if bad:
            raise StepError(
                f"feature column '{bad[0]}' holds infinite values",
                step=where,
                column=bad[0],
                fix="replace or filter infinite values first (NaN/null are handled)",
            )
    return spec


def feature_frame(df: pl.DataFrame, spec: FeatureSpec) -> Any:
    """The pandas frame sklearn sees: numeric as float; categoricals as dense integer codes.

    A categorical's codes are the ranks of its sorted distinct values (nulls are a level of their
    own), computed in Polars. One-hot/ordinal encoding of the codes gives exactly the same
    columns as encoding the strings, but scikit-learn's encoders run several times faster on
    integers than on Python string objects.
    """
    exprs: list[pl.Expr] = [pl.col(c).cast(pl.Float64) for c in spec.numeric]
    exprs += [
        pl.col(c).cast(pl.String).fill_null("\x00null").rank("dense").cast(pl.Int64)
        for c in spec.categorical
    ]
    if spec.text:
        exprs.append(pl.col(spec.text).cast(pl.String).fill_null(""))
    return df.select(exprs).to_pandas()


def make_model(
    spec: FeatureSpec,
    model: ModelName = "auto",
    *,
    seed: int = 0,
    max_categories: int = 50,
    max_text_features: int = 50_000,
    n_rows: int = 0,
) -> Any:
    """The scikit-learn pipeline for these features (see the module docstring)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import Pipeline

    kind = "logreg" if model == "auto" else model
    if kind == "gbm" and spec.text:
        raise DataError(
            "model: gbm does not take a text column",
            field="model",
            fix="use model: logreg (or auto) with text",
        )
    tfidf = (
        TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=2 if n_rows >= 1000 else 1,  # singletons cannot generalise across folds
            max_features=max_text_features,
        )
        if spec.text
        else None
    )
    pre = column_encoder(
        spec.numeric,
        spec.categorical,
        text=spec.text,
        text_vectorizer=tfidf,
        scale_numeric=kind != "gbm",
        categorical_as="ordinal" if kind == "gbm" else "onehot",
        max_categories=max_categories,
        sparse_threshold=0.3 if kind != "gbm" else 0.0,
    )
    n_num = len(spec.numeric)
    cat_idx = list(range(n_num, n_num + len(spec.categorical)))
    clf = make_classifier(
        kind,
        seed=seed,
        categorical=(cat_idx or None) if kind == "gbm" else None,
        max_iter=1000 if kind == "logreg" else None,
        C=1.0 if not spec.text else 10.0,
        choices=("auto", "logreg", "gbm"),
    )
    return Pipeline([("features", pre), ("model", clf)])


def import_cleanlab() -> None:
    """Import the cleanlab modules tamis uses, undoing a side effect of theirs.

    A cleanlab module runs `warnings.filterwarnings("ignore")` at import time, which silences
    every warning in the process from then on (ours included: null labels dropped, a weak model).
    Importing inside `catch_warnings` restores the filters; later imports are cached no-ops.
    """
    with warnings.catch_warnings():
        import cleanlab.filter  # noqa: F401
        import cleanlab.multiannotator  # noqa: F401
        import cleanlab.rank  # noqa: F401
        from cleanlab import Datalab  # noqa: F401


def check_label_dtype(df: pl.DataFrame, label: str, *, where: str) -> None:
    """A label holds one class per row: lists, arrays, structs and objects are refused."""
    dtype = df.schema[label]
    if dtype.is_nested() or dtype in (pl.Object, pl.Binary):
        raise StepError(
            f"label column '{label}' has dtype {dtype}; a label holds one class per row",
            step=where,
            column=label,
            field="label",
            fix="name a column of classes (numbers, strings or booleans) in `label`",
        )


def null_label_mask(s: pl.Series) -> np.ndarray:
    """Rows whose label is missing: null, or NaN in a float label."""
    missing = s.is_null()
    if s.dtype.is_float():
        missing = missing | s.is_nan().fill_null(True)
    return missing.to_numpy().astype(bool)


def drop_null_labels(
    df: pl.DataFrame, label: str, *, where: str, purpose: str
) -> tuple[pl.DataFrame, int, list[str]]:
    """Rows with a null (or NaN) label removed, how many, and a warning saying so.

    A null label is not a class: kept, it silently becomes one more class (one blank row turns a
    binary label into a three-class problem and shifts every AUC and noise estimate).
    """
    if label not in df.columns:
        return df, 0, []
    missing = null_label_mask(df.get_column(label))
    n = int(missing.sum())
    if n == 0:
        return df, 0, []
    if n == df.height:  # nothing left: the caller raises its own error
        return df.clear(), n, []
    msg = (
        f"{n:,} of {df.height:,} row(s) have a null label in '{label}':"
        f" dropped before {purpose} (null_labels_dropped: {n})"
    )
    warnings.warn(msg, stacklevel=3)
    return df.filter(pl.Series(~missing)), n, [msg]


def choose_folds(
    counts: dict[str, int], folds: int, *, where: str, label: str
) -> tuple[int, list[str]]:
    """Folds reduced to the smallest class size (with a warning); an error below 2 members."""
    warns: list[str] = []
    smallest_class, smallest = min(counts.items(), key=lambda kv: kv[1])
    if smallest < 2:
        raise StepError(
            f"class {smallest_class!r} of '{label}' has {smallest} row; cross-validation needs"
            " at least 2 per class",
            step=where,
            column=label,
            fix="drop or merge the rare classes (e.g. with a filter step) before this step",
        )
    if smallest < folds:
        msg = (
            f"class {smallest_class!r} has only {smallest} rows, fewer than folds={folds}:"
            f" using {smallest} folds"
        )
        warnings.warn(msg, stacklevel=3)
        warns.append(msg)
        folds = smallest
    return folds, warns


def embed_texts(texts: list[str], model_path: str, *, batch_size: int = 64) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings from a local transformer directory (no download)."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "embedding_model needs torch and transformers", fix="pip install 'tamis[train]'"
        ) from exc
    path = Path(model_path)
    if not path.is_dir():
        raise StepError(
            f"embedding model directory '{model_path}' does not exist",
            field="embedding_model",
            fix="give a local directory holding a saved (sentence-)transformer",
        )
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    mdl = AutoModel.from_pretrained(str(path), local_files_only=True)
    mdl.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tok(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            hidden = mdl(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out.append(pooled.float().numpy())
    return np.concatenate(out, axis=0) if out else np.zeros((0, 0), dtype=np.float32)


def out_of_fold_pred_probs(
    x: Any,
    y: np.ndarray,
    estimator: Any,
    *,
    folds: int,
    seed: int,
    n_jobs: int | None = None,
    blas_threads: int | None = 1,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """K-fold (stratified, shuffled with `seed`) out-of-fold `predict_proba`.

    With `order` (e.g. `canonical_order(df)`), rows are dealt to folds and fitted in that order
    and the probabilities come back in the input's order: the result then does not depend on how
    the input rows were ordered.

    `blas_threads` caps BLAS/OpenMP threads during the fits (None = library default). The fold
    models are small, and multithreaded BLAS inside lbfgs mostly spin-waits: on a busy 2-core
    machine we measured 0.2 s with one thread against 20-70 s with the default.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if order is not None:
        x = x.iloc[order] if hasattr(x, "iloc") else x[order]
        y = y[order]
    try:
        with threadpool_limits(limits=blas_threads):
            probs = cross_val_predict(estimator, x, y, cv=cv, method="predict_proba", n_jobs=n_jobs)
    except ValueError as exc:  # the data cannot be fitted (e.g. a text column with no words)
        raise StepError(
            f"the model could not be fitted on these features: {exc}",
            fix="check the feature/text columns (some fold may hold no usable value), or give"
            " a precomputed `pred_probs` column",
        ) from exc
    probs = np.asarray(probs, dtype=np.float64)
    if order is not None:
        back = np.empty_like(probs)
        back[order] = probs
        probs = back
    return probs


def canonical_order(df: pl.DataFrame) -> np.ndarray:
    """Row positions sorted by a hash of each row's whole content (ties: identical rows).

    Folds dealt in this order do not depend on the input's row order: shuffling the rows of a
    frame moves each row's result with it and changes nothing else.
    """
    hashes = df.hash_rows(seed=0).to_numpy()
    return np.argsort(hashes, kind="stable")


def pred_probs_from_column(
    df: pl.DataFrame, column: str, n_classes: int, *, where: str
) -> np.ndarray:
    """A list/array column of per-class probabilities (sorted class order) as an (n, k) array."""
    if column not in df.columns:
        raise StepError(
            f"pred_probs column '{column}' is not in the data",
            step=where,
            column=column,
            fix="name a list column of per-class probabilities, or leave pred_probs out",
        )
    s = df.get_column(column)
    if not isinstance(s.dtype, (pl.List, pl.Array)) or s.has_nulls():
        raise StepError(
            f"pred_probs column '{column}' must be a non-null list of floats per row (got {s.dtype})",
            step=where,
            column=column,
            fix="store one probability per class, in sorted class order",
        )
    lens = s.list.len() if isinstance(s.dtype, pl.List) else None
    if lens is not None and (lens.min() != n_classes or lens.max() != n_classes):
        raise StepError(
            f"pred_probs rows must have {n_classes} entries (one per class)",
            step=where,
            column=column,
            fix="one probability per class, in sorted class order",
        )
    arr = np.asarray(s.to_list(), dtype=np.float64)
    if arr.shape != (df.height, n_classes) or not np.isfinite(arr).all():
        raise StepError(
            f"pred_probs column '{column}' is not an (n, {n_classes}) array of finite numbers",
            step=where,
            column=column,
            fix="one probability per class, in sorted class order",
        )
    return arr
