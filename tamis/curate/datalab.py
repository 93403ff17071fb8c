"""Dataset-wide issue audit with cleanlab's Datalab: outliers, near duplicates, non-IID order,
class imbalance (and optionally label issues, nulls), as Datalab-style columns.

    out, report = datalab_issues(df, label="y")                     # tabular
    out, report = datalab_issues(df, label="Label", text="SMS")     # text (TF-IDF -> SVD)

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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.label_features import (
    ModelName,
    drop_null_labels,
    embed_texts,
    feature_frame,
    resolve_features,
)
from tamis.curate.label_issues import check_labels, compute_pred_probs
from tamis.curate.noise import encode_labels
from tamis.errors import StepError
from tamis.tabular import column_encoder

DEFAULT_ISSUES = ("outlier", "near_duplicate", "non_iid", "class_imbalance")
KNOWN_ISSUES = (*DEFAULT_ISSUES, "label", "null", "underperforming_group", "data_valuation")
NEEDS_LABEL = {"class_imbalance", "label", "underperforming_group", "data_valuation"}


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
            raise StepError(
                "embedding_model needs a text column",
                step="datalab",
                field="text",
                fix="set `text`",
            )
        texts = df.get_column(text).cast(pl.String).fill_null("").to_list()
        blocks.append(embed_texts(texts, embedding_model))
        text = None
        if features is None:
            return blocks[0]
    spec = resolve_features(df, label=label, features=features, text=text, where="datalab")
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


def datalab_issues(
    df: pl.DataFrame,
    *,
    label: str | None = None,
    features: list[str] | None = None,
    text: str | None = None,
    issue_types: Sequence[str] | None = None,
    pred_probs: str | None = None,
    model: ModelName = "auto",
    embedding_model: str | None = None,
    folds: int = 5,
    svd_dims: int = 100,
    action: str = "flag",
    metric: str = "auto",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Run Datalab; returns the frame with issue columns and a report (tables: `datalab_issues`).

    `issue_types` default: outlier, near_duplicate, non_iid, and class_imbalance when a label is
    given. `action: drop` removes rows flagged by any issue type.
    """
    from tamis.curate.label_features import import_cleanlab

    import_cleanlab()  # without its process-wide warnings.filterwarnings("ignore")
    from cleanlab import Datalab

    where = "datalab"
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    types = (
        list(issue_types)
        if issue_types is not None
        else [t for t in DEFAULT_ISSUES if label is not None or t not in NEEDS_LABEL]
    )
    unknown = [t for t in types if t not in KNOWN_ISSUES]
    if unknown:
        raise StepError(
            f"unknown Datalab issue type(s) {', '.join(unknown)}",
            step=where,
            field="issue_types",
            fix=f"choose from {', '.join(KNOWN_ISSUES)}",
        )
    if label is None and NEEDS_LABEL & set(types):
        raise StepError(
            f"issue types {', '.join(sorted(NEEDS_LABEL & set(types)))} need a label",
            step=where,
            field="label",
            fix="set `label` or drop those issue types",
        )
    if action not in ("flag", "drop"):
        raise StepError(
            f"unknown action {action!r}", step=where, field="action", fix="use flag or drop"
        )
    rows_in = df.height
    n_null = 0
    null_warns: list[str] = []
    if label is not None:
        if label not in df.columns:
            check_labels(df, label, where)
        # a null label is not a class: unlabelled rows are dropped (and counted)
        df, n_null, null_warns = drop_null_labels(df, label, where=where, purpose="Datalab")
        if df.height == 0:
            raise StepError(
                f"label column '{label}' is entirely null",
                step=where,
                column=label,
                field="label",
                fix="set `label` to the column holding the class, or leave it out",
            )
    if df.height < 10:
        raise StepError(
            f"Datalab needs at least 10 rows, got {df.height}",
            step=where,
            fix="run it on a larger version",
        )
    info: dict[str, Any] = {"warnings": []}
    data: dict[str, Any] = {}
    y = None
    if label is not None:
        labels = check_labels(df, label, where)
        classes, y = encode_labels(labels)
        data["label"] = y
    say("building features")
    x = feature_matrix(
        df,
        label=label,
        features=features,
        text=text,
        embedding_model=embedding_model,
        svd_dims=svd_dims,
        seed=seed,
    )
    probs = None
    if "label" in types or "underperforming_group" in types:
        assert y is not None
        probs, info = compute_pred_probs(
            df,
            label=str(label),
            y=y,
            n_classes=len(classes),
            features=features,
            text=text,
            pred_probs=pred_probs,
            model=model,
            embedding_model=embedding_model,
            folds=folds,
            seed=seed,
            where=where,
            progress=progress,
            class_names=[str(c) for c in classes.to_list()],
        )
    say("Datalab: " + ", ".join(types))
    lab = Datalab(
        data=data or {"_row": np.arange(df.height)},
        label_name="label" if y is not None else None,
        verbosity=0,
    )
    if metric == "auto":
        metric = "cosine" if (text is not None or embedding_model is not None) else "euclidean"
    if metric not in ("euclidean", "cosine"):
        raise StepError(
            f"unknown metric {metric!r}",
            step=where,
            field="metric",
            fix="use auto, euclidean or cosine",
        )
    knn_types = {"outlier", "near_duplicate", "non_iid"}
    lab.find_issues(
        features=x,
        pred_probs=probs,
        issue_types={t: ({"metric": metric} if t in knn_types else {}) for t in types},
    )
    issues = lab.get_issues()
    cols = []
    for t in types:
        flag, score = f"is_{t}_issue", f"{t}_score"
        if flag in issues.columns:
            cols.append(pl.Series(flag, issues[flag].to_numpy(), dtype=pl.Boolean))
            cols.append(pl.Series(score, issues[score].to_numpy(), dtype=pl.Float64))
    base = df.drop([c.name for c in cols if c.name in df.columns])
    out = base.with_columns(cols)
    flag_cols = [c.name for c in cols if c.name.startswith("is_")]
    any_issue = out.select(pl.any_horizontal(flag_cols)).to_series() if flag_cols else None
    summary = lab.get_issue_summary()
    report: dict[str, Any] = {
        "rows_in": rows_in,
        "null_labels_dropped": n_null,
        "issue_types": types,
        "summary": [
            {
                "issue_type": str(r["issue_type"]),
                "num_issues": int(r["num_issues"]),
                "score": float(r["score"]),
            }
            for r in summary.to_dict("records")
        ],
        "rows_with_any_issue": int(any_issue.sum()) if any_issue is not None else 0,
        "action": action,
        "features_dim": int(x.shape[1]),
        "metric": metric,
        "warnings": null_warns + info.get("warnings", []),
    }
    facts: dict[str, Any] = {}
    if "near_duplicate" in types:
        sets = lab.get_info("near_duplicate").get("near_duplicate_sets")
        if sets is not None:
            facts["near_duplicate_rows"] = int(sum(1 for s in sets if len(s)))
    if "non_iid" in types:
        p = lab.get_info("non_iid").get("p-value")
        facts["non_iid_p_value"] = float(p) if p is not None else None
    if "class_imbalance" in types and label is not None:
        ci = lab.get_info("class_imbalance")
        minority = ci.get("Rarest Class")
        if isinstance(minority, (int, np.integer)):
            facts["rarest_class"] = str(classes.to_list()[int(minority)])
    report["facts"] = facts
    if action == "drop" and any_issue is not None:
        out = out.filter(~any_issue)
    report["rows_out"] = out.height
    report["seconds"] = round(time.perf_counter() - t0, 3)
    flagged = out if action == "flag" else base.with_columns(cols)
    table = (
        flagged.with_row_index("row")
        .filter(pl.any_horizontal(flag_cols) if flag_cols else pl.lit(False))
        .select("row", *flag_cols, *[c.name for c in cols if c.name.endswith("_score")])
    )
    report["tables"] = {"datalab_issues": table}
    return out, report
