"""The one home for tabular plumbing shared by curate, privacy and train.

- `to_pandas`: a pandas view of a Polars (eager or lazy) or pandas frame.
- `column_encoder`: a scikit-learn `ColumnTransformer` for numeric / categorical (/ text) columns:
  numbers median-imputed (optionally with missing indicators) and standardised, or passed
  through; categories one-hot or ordinal encoded.
- `make_classifier`: a scikit-learn classifier by name (`gbm`, `logreg`, `rf`).

    from tamis.tabular import column_encoder, make_classifier, to_pandas
    pre = column_encoder(["age"], ["education"], max_categories=50)
    clf = make_classifier("gbm", seed=0, categorical=[1])

Every caller states the settings it relies on (iterations, regularisation, encoders), so a figure
computed through these helpers is the figure its module always computed. scikit-learn and pandas
are imported inside the functions: importing this module is cheap. It sits beside `tamis.errors`,
below the capability packages, which may all import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from tamis.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

ClassifierName = Literal["gbm", "logreg", "rf"]


def to_pandas(frame: Any) -> pd.DataFrame:
    """A pandas copy of a Polars (eager or lazy) or pandas frame (a pandas frame is returned as is)."""
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "collect") and not hasattr(frame, "to_pandas"):
        frame = frame.collect()
    if hasattr(frame, "to_pandas"):
        out: pd.DataFrame = frame.to_pandas()
        return out
    raise DataError(f"expected a Polars or pandas frame, got {type(frame).__name__}")


def column_encoder(
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    *,
    text: str | None = None,
    text_vectorizer: Any = None,
    scale_numeric: bool = True,
    missing_indicator: bool = True,
    categorical_as: Literal["onehot", "ordinal"] = "onehot",
    max_categories: int | None = None,
    min_frequency: int | None = None,
    handle_unknown: Literal["infrequent_if_exist", "ignore"] = "infrequent_if_exist",
    fill_categorical: str | None = None,
    sparse_threshold: float = 0.0,
) -> Any:
    """An unfitted `ColumnTransformer` over these columns (blocks named num, cat, text).

    - numeric: `SimpleImputer(median, add_indicator=missing_indicator)` + `StandardScaler`, or
      passed through as they are (`scale_numeric=False`, e.g. for gradient boosting, which
      handles missing values natively);
    - categorical: `OneHotEncoder(handle_unknown, max_categories, min_frequency)`, or an
      `OrdinalEncoder` whose unknown values become NaN; with `fill_categorical`, missing values
      are first imputed with that constant;
    - text: the `text` column through `text_vectorizer` (e.g. a `TfidfVectorizer`).

    `sparse_threshold` is the `ColumnTransformer`'s: 0 gives a dense matrix.
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    parts: list[tuple[str, Any, Any]] = []
    if numeric:
        num: Any = (
            make_pipeline(
                SimpleImputer(strategy="median", add_indicator=missing_indicator), StandardScaler()
            )
            if scale_numeric
            else "passthrough"
        )
        parts.append(("num", num, list(numeric)))
    if categorical:
        if categorical_as == "ordinal":
            enc: Any = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                max_categories=max_categories,
            )
        else:
            enc = OneHotEncoder(
                handle_unknown=handle_unknown,
                max_categories=max_categories,
                min_frequency=min_frequency,
                sparse_output=sparse_threshold > 0,
            )
        if fill_categorical is not None:
            enc = make_pipeline(
                SimpleImputer(strategy="constant", fill_value=fill_categorical), enc
            )
        parts.append(("cat", enc, list(categorical)))
    if text is not None:
        if text_vectorizer is None:
            raise ValueError("column_encoder: a text column needs a text_vectorizer")
        parts.append(("text", text_vectorizer, text))
    return ColumnTransformer(parts, sparse_threshold=sparse_threshold)


def make_classifier(
    name: str,
    *,
    seed: int = 0,
    categorical: Any = None,
    max_iter: int | None = None,
    C: float = 1.0,
    early_stopping: bool | Literal["auto"] = "auto",
    scale: bool = False,
    choices: Sequence[str] = ("gbm", "logreg", "rf"),
) -> Any:
    """An unfitted scikit-learn classifier by name.

    - `gbm`: `HistGradientBoostingClassifier(categorical_features=categorical, early_stopping,
      max_iter)` (max_iter None = scikit-learn's 100);
    - `logreg`: `LogisticRegression(C, max_iter)` (lbfgs; max_iter None = scikit-learn's 100),
      after a `StandardScaler` when `scale`;
    - `rf`: `RandomForestClassifier(n_estimators=200, n_jobs=2)`.

    All seeded with `seed`. A name outside `choices` is a `DataError` (field `model`) listing them.
    """
    if name not in choices:
        names = list(choices)
        listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        raise DataError(f"unknown model {name!r}", field="model", fix=f"use {listed}")
    iters = {} if max_iter is None else {"max_iter": max_iter}
    if name == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            categorical_features=categorical,
            random_state=seed,
            early_stopping=early_stopping,
            **iters,
        )
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=200, n_jobs=2, random_state=seed)
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, random_state=seed, **iters)
        if scale:
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), clf)
        return clf
    raise DataError(f"unknown model {name!r}", field="model", fix="use gbm, logreg or rf")
