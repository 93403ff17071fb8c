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

from tamis.errors import DataError, MissingDependencyError
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
) -> FeatureSpec:
    """Split the feature columns into numeric / categorical (+ text); check they exist."""
    if text is not None and text not in df.columns:
        raise DataError(
            f"text column '{text}' is not in the data (columns: {', '.join(df.columns[:20])})",
            column=text,
            fix="set `text` to the column holding the text",
        )
    if text is not None:
        tdt = df.schema[text]
        if not (tdt in (pl.String, pl.Categorical, pl.Null) or isinstance(tdt, pl.Enum)):
            raise DataError(
                f"text column '{text}' has dtype {tdt}, not text",
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
            raise DataError(
                f"feature column(s) {', '.join(missing)} not in the data",
                column=missing[0],
                fix=f"columns are: {', '.join(df.columns[:30])}",
            )
        cols = list(dict.fromkeys(c for c in features if c != text))  # a repeat counts once
    if label is not None and label in cols:
        raise DataError(
            f"the label column '{label}' is also listed as a feature",
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
            raise DataError(
                f"feature column '{c}' has dtype {dtype}, which the default model cannot use",
                column=c,
                fix="list usable columns in `features`, or give `pred_probs`",
            )
    if not spec.columns:
        raise DataError(
            "no feature columns to fit a model on",
            fix="give `features`, `text`, or a precomputed `pred_probs` column",
        )
    if spec.numeric:
        bad = [
            c
            for c in spec.numeric
            if df.schema[c].is_float() and bool(df.select(pl.col(c).is_infinite().any()).item())
        ]
        if bad:
            raise DataError(
                f"feature column '{bad[0]}' holds infinite values",
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
        raise DataError(
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
