"""Dataset-wide issue audit with cleanlab's Datalab: outliers, near duplicates, non-IID order,
class imbalance (and optionally label issues, nulls), as Datalab-style columns.

    out, report = datalab_issues(df, DatalabConfig(label="y"))                  # tabular
    out, report = datalab_issues(df, DatalabConfig(label="Label", text="SMS"))  # text (TF-IDF -> SVD)

Features: the same columns as `label_issues` (see `label_features`), turned into a dense numeric
matrix: tabular columns median-imputed/standardised/one-hot encoded; a text column as TF-IDF
reduced to `svd_dims` dimensions by truncated SVD (or embedded with `embedding_model`). With a
label and the `label` issue type, out-of-fold predicted probabilities are computed as in
`label_issues`. Neighbours use `metric`: `auto` is euclidean for tabular features (standardised,
so magnitude matters: an extreme row is an outlier) and cosine for text/embeddings.

Adds `is_<name>_issue` (bool) and `<name>_score` (in [0, 1], low = bad) for each issue type run.
The report has Datalab's summary (per issue type: number of issues and an overall score) and a few
facts from `Datalab.get_info` (near-duplicate sets, the non-IID p-value, the rarest class).

With a label, rows whose label is null (or NaN) are dropped first (a null is not a class),
counted in `report["null_labels_dropped"]` with a warning; they are not in the output.

Datalab builds a k-nearest-neighbour graph over all rows: fine for up to ~100k rows on a laptop,
slow beyond (sample first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from tamis.curate.label_column import check_labels, encode_labels, labelled_rows
from tamis.curate.label_features import (
    embed_texts,
    feature_frame,
    import_cleanlab,
    resolve_features,
)
from tamis.curate.pred_probs import LabelModelConfig, compute_pred_probs
from tamis.errors import DataError
from tamis.tabular import column_encoder

DEFAULT_ISSUES = ("outlier", "near_duplicate", "non_iid", "class_imbalance")
KNOWN_ISSUES = (*DEFAULT_ISSUES, "label", "null", "underperforming_group", "data_valuation")
NEEDS_LABEL = {"class_imbalance", "label", "underperforming_group", "data_valuation"}
KNN_ISSUES = {"outlier", "near_duplicate", "non_iid"}


class DatalabConfig(LabelModelConfig):
    """Which Datalab issue types to look for, on which features (the `datalab` step's params)."""

    label: str | None = Field(
        default=None, description="the label column (for class_imbalance, label)"
    )
    issue_types: list[str] | None = Field(
        default=None,
        description="Datalab issue types (default outlier, near_duplicate, non_iid,"
        " class_imbalance); also label, null, underperforming_group, data_valuation",
    )
    svd_dims: int = Field(default=100, ge=1, description="text: TF-IDF reduced to this many dims")
    metric: Literal["auto", "euclidean", "cosine"] = Field(
        default="auto", description="kNN metric: auto = euclidean (tabular) / cosine (text)"
    )
    action: Literal["flag", "drop"] = Field(
        default="flag", description="flag keeps rows; drop removes rows with any issue"
    )

    def types(self) -> list[str]:
        """The issue types to run (the default set leaves out those that need a label)."""
        if self.issue_types is not None:
            return list(self.issue_types)
        return [t for t in DEFAULT_ISSUES if self.label is not None or t not in NEEDS_LABEL]


def issue_columns(types: list[str]) -> list[str]:
    """The `is_<type>_issue` / `<type>_score` columns Datalab adds for these issue types."""
    return [c for t in types for c in (f"is_{t}_issue", f"{t}_score")]


def feature_matrix(
    df: pl.DataFrame,
    *,
    label: str | None,
    features: list[str] | None,
    text: str | None,
    embedding_model: str | None = None,
    svd_dims: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """A dense float matrix of the feature columns (see the module docstring)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    blocks: list[np.ndarray] = []
    if embedding_model is not None:
        if text is None:
            raise DataError("embedding_model needs a text column", field="text", fix="set `text`")
        texts = df.get_column(text).cast(pl.String).fill_null("").to_list()
        blocks.append(embed_texts(texts, embedding_model))
        text = None
        if features is None:
            return blocks[0]
    spec = resolve_features(df, label=label, features=features, text=text)
    frame = feature_frame(df, spec)
    if spec.numeric or spec.categorical:
        ct = column_encoder(spec.numeric, spec.categorical, max_categories=50)
        blocks.append(np.asarray(ct.fit_transform(frame), dtype=np.float64))
    if spec.text:
        tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform(frame[spec.text])
        dims = max(1, min(svd_dims, tfidf.shape[1] - 1, df.height - 1))
        svd = TruncatedSVD(n_components=dims, random_state=seed)
        blocks.append(svd.fit_transform(tfidf))
    return np.hstack(blocks) if len(blocks) > 1 else blocks[0]


def _check_types(types: list[str], label: str | None) -> None:
    unknown = [t for t in types if t not in KNOWN_ISSUES]
    if unknown:
        raise DataError(
            f"unknown Datalab issue type(s) {', '.join(unknown)}",
            field="issue_types",
            fix=f"choose from {', '.join(KNOWN_ISSUES)}",
        )
    if label is None and NEEDS_LABEL & set(types):
        raise DataError(
            f"issue types {', '.join(sorted(NEEDS_LABEL & set(types)))} need a label",
            field="label",
            fix="set `label` or drop those issue types",
        )


def datalab_issues(
    df: pl.DataFrame,
    config: DatalabConfig,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Run Datalab; returns the frame with issue columns and a report (tables: `datalab_issues`).

    `issue_types` default: outlier, near_duplicate, non_iid, and class_imbalance when a label is
    given. `action: drop` removes rows flagged by any issue type.
    """
    import_cleanlab()  # without its process-wide warnings.filterwarnings("ignore")
    from cleanlab import Datalab

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    label = config.label
    types = config.types()
    _check_types(types, label)
    rows_in = df.height
    n_null, null_warns = 0, list[str]()
    if label is not None:
        # a null label is not a class: unlabelled rows are dropped (and counted)
        df, n_null, null_warns = labelled_rows(df, label, purpose="Datalab")
    if df.height < 10:
        raise DataError(
            f"Datalab needs at least 10 rows, got {df.height}", fix="run it on a larger version"
        )
    classes, y = encode_labels(check_labels(df, label)) if label is not None else (None, None)
    say("building features")
    x = feature_matrix(
        df,
        label=label,
        features=config.features,
        text=config.text,
        embedding_model=config.embedding_model,
        svd_dims=config.svd_dims,
        seed=seed,
    )
    probs, info = None, dict[str, Any](warnings=[])
    if "label" in types or "underperforming_group" in types:
        assert classes is not None and y is not None
        probs, info = compute_pred_probs(
            df,
            config,
            y=y,
            n_classes=len(classes),
            seed=seed,
            progress=progress,
            class_names=[str(c) for c in classes.to_list()],
        )
    say("Datalab: " + ", ".join(types))
    lab = Datalab(
        data={"label": y} if y is not None else {"_row": np.arange(df.height)},
        label_name="label" if y is not None else None,
        verbosity=0,
    )
    metric = config.metric
    if metric == "auto":
        text_like = config.text is not None or config.embedding_model is not None
        metric = "cosine" if text_like else "euclidean"
    lab.find_issues(
        features=x,
        pred_probs=probs,
        issue_types={t: ({"metric": metric} if t in KNN_ISSUES else {}) for t in types},
    )
    cols = _issue_series(lab.get_issues(), types)
    base = df.drop([c.name for c in cols if c.name in df.columns])
    flagged = base.with_columns(cols)
    flag_cols = [c.name for c in cols if c.name.startswith("is_")]
    any_issue = flagged.select(pl.any_horizontal(flag_cols)).to_series() if flag_cols else None
    out = (
        flagged.filter(~any_issue) if config.action == "drop" and any_issue is not None else flagged
    )
    report: dict[str, Any] = {
        "rows_in": rows_in,
        "null_labels_dropped": n_null,
        "issue_types": types,
        "summary": _summary(lab),
        "rows_with_any_issue": int(any_issue.sum()) if any_issue is not None else 0,
        "action": config.action,
        "features_dim": int(x.shape[1]),
        "metric": metric,
        "warnings": null_warns + info.get("warnings", []),
        "facts": _facts(lab, types, classes),
        "rows_out": out.height,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    table = (
        flagged.with_row_index("row")
        .filter(pl.any_horizontal(flag_cols) if flag_cols else pl.lit(False))
        .select("row", *flag_cols, *[c.name for c in cols if c.name.endswith("_score")])
    )
    report["tables"] = {"datalab_issues": table}
    return out, report


def _issue_series(issues: Any, types: list[str]) -> list[pl.Series]:
    """Datalab's `is_<t>_issue` / `<t>_score` columns (pandas) as typed Polars series."""
    cols = []
    for t in types:
        flag, score = f"is_{t}_issue", f"{t}_score"
        if flag in issues.columns:
            cols.append(pl.Series(flag, issues[flag].to_numpy(), dtype=pl.Boolean))
            cols.append(pl.Series(score, issues[score].to_numpy(), dtype=pl.Float64))
    return cols


def _summary(lab: Any) -> list[dict[str, Any]]:
    return [
        {
            "issue_type": str(r["issue_type"]),
            "num_issues": int(r["num_issues"]),
            "score": float(r["score"]),
        }
        for r in lab.get_issue_summary().to_dict("records")
    ]


def _facts(lab: Any, types: list[str], classes: pl.Series | None) -> dict[str, Any]:
    """A few facts from `Datalab.get_info`: near-duplicate rows, non-IID p-value, rarest class."""
    facts: dict[str, Any] = {}
    if "near_duplicate" in types:
        sets = lab.get_info("near_duplicate").get("near_duplicate_sets")
        if sets is not None:
            facts["near_duplicate_rows"] = int(sum(1 for s in sets if len(s)))
    if "non_iid" in types:
        p = lab.get_info("non_iid").get("p-value")
        facts["non_iid_p_value"] = float(p) if p is not None else None
    if "class_imbalance" in types and classes is not None:
        minority = lab.get_info("class_imbalance").get("Rarest Class")
        if isinstance(minority, (int, np.integer)):
            facts["rarest_class"] = str(classes.to_list()[int(minority)])
    return facts
