"""Synthetic-data quality: SDMetrics' QualityReport and ML efficacy (TSTR vs TRTR).

Plain functions over pandas or Polars frames; nothing here knows the store.

    from tamis.privacy.quality import ml_efficacy, tstr, quality_report
    tstr(synthetic, real_train, holdout, target="income")
    # {"tstr": {...accuracy, minority_f1, auc...}, "trtr": {...}, "accuracy_gap": 0.012, ...}

ML efficacy always evaluates on a *real* holdout, and the minority class is the least frequent
label of that real holdout, so a generator that only emits the majority class scores a minority
F1 of 0 and an AUC of 0.5 however good its accuracy looks.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from tamis.errors import DataError
from tamis.stats import bootstrap_indices, percentile_interval
from tamis.tabular import make_classifier, to_pandas

Model = Literal["gbm", "logreg", "rf"]


def _split_xy(df: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    if target not in df.columns:
        raise DataError(
            f"target column '{target}' is not in the data",
            column=target,
            fix=f"choose one of: {', '.join(map(str, df.columns))}",
        )
    return df.drop(columns=[target]), _label_strings(df[target])


def _label_strings(y: pd.Series) -> pd.Series:
    """Labels as strings that match across frames: a whole-number float column (an integer
    column that held nulls, e.g. synthetic labels) gives "1", not "1.0"."""
    if pd.api.types.is_float_dtype(y):
        values = y.dropna()
        if len(values) and bool((values == values.round()).all()):
            return y.map(lambda v: str(int(v)) if v == v else "nan")
    return y.astype(str).str.strip()


def _drop_null_target(df: pd.DataFrame, target: str) -> pd.DataFrame:
    """Rows without a label cannot be scored: they are left out (counted by `_null_labels`).

    A missing label is a null, a NaN, or an empty/blank string (as a CSV's blank cell reads).
    """
    if target in df.columns:
        missing = _null_labels(df[target])
        if missing.any():
            return df[~missing]
    return df


def _least_frequent(y: pd.Series) -> str:
    """The least frequent label; ties go to the smallest label (never to row order)."""
    counts = y.value_counts()
    return str(min(counts.items(), key=lambda kv: (kv[1], str(kv[0])))[0])


def _null_labels(y: pd.Series) -> pd.Series:
    missing = y.isna()
    if y.dtype == object or pd.api.types.is_string_dtype(y):
        missing = missing | (y.astype(str).str.strip() == "")
    return missing


def _encode(
    train: pd.DataFrame, test: pd.DataFrame, onehot: bool
) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Numbers pass through (median-imputed); other columns become ordinal codes or one-hot."""
    num_cols = [c for c in train.columns if pd.api.types.is_numeric_dtype(train[c])]
    cat_cols = [c for c in train.columns if c not in num_cols]
    parts_tr: list[np.ndarray] = []
    parts_te: list[np.ndarray] = []
    is_cat: list[bool] = []
    for c in num_cols:
        tr = pd.to_numeric(train[c], errors="coerce").astype(float)
        te = pd.to_numeric(test[c], errors="coerce").astype(float)
        med = float(tr.median()) if tr.notna().any() else 0.0
        parts_tr.append(tr.fillna(med).to_numpy()[:, None])
        parts_te.append(te.fillna(med).to_numpy()[:, None])
        is_cat.append(False)
    for c in cat_cols:
        tr_s = train[c].astype(str)
        te_s = test[c].astype(str)
        cats = pd.Index(sorted(set(tr_s.unique())))
        tr_codes = cats.get_indexer(tr_s)
        te_codes = cats.get_indexer(te_s)  # unseen -> -1
        if onehot:
            eye_tr = np.zeros((len(tr_s), len(cats)), dtype=float)
            eye_tr[np.arange(len(tr_s)), tr_codes] = 1.0
            eye_te = np.zeros((len(te_s), len(cats)), dtype=float)
            ok = te_codes >= 0
            eye_te[np.flatnonzero(ok), te_codes[ok]] = 1.0
            parts_tr.append(eye_tr)
            parts_te.append(eye_te)
            is_cat.extend([False] * len(cats))
        else:
            te_codes = np.where(te_codes < 0, np.nan, te_codes)
            parts_tr.append(tr_codes.astype(float)[:, None])
            parts_te.append(te_codes.astype(float)[:, None])
            is_cat.append(len(cats) <= 250)
    x_tr = np.hstack(parts_tr) if parts_tr else np.zeros((len(train), 0))
    x_te = np.hstack(parts_te) if parts_te else np.zeros((len(test), 0))
    return x_tr, x_te, is_cat


def _scores(
    y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes: list[str], minority: str
) -> dict[str, float]:
    from sklearn.metrics import f1_score, roc_auc_score

    acc = float(np.mean(pred == y_true))
    f1 = float(f1_score(y_true == minority, pred == minority, zero_division=0.0))
    present = sorted(set(y_true.tolist()))
    if len(present) < 2:
        auc = float("nan")
    elif len(classes) == 2:
        auc = float(roc_auc_score(y_true == minority, proba[:, classes.index(minority)]))
    else:
        # one-vs-rest AUC for the minority class keeps the figure about the hard class
        auc = float(roc_auc_score(y_true == minority, proba[:, classes.index(minority)]))
    return {"accuracy": acc, "minority_f1": f1, "auc": auc}


def ml_efficacy(
    train_df: Any,
    holdout_df: Any,
    target: str,
    model: Model | str = "gbm",
    seed: int = 0,
    n_boot: int = 200,
    minority: str | None = None,
    predictions: bool = False,
) -> dict[str, Any]:
    """Train `model` on `train_df`, evaluate on the real `holdout_df`.

    `predictions=True` adds the per-row scores on the holdout (rows with a label, in its order):
    `predictions = {"y": labels, "pred": predicted labels, "proba": rows x classes, "classes"}`.

    Returns accuracy, F1 of the minority class (least frequent holdout label unless given), AUC
    (minority class vs rest), each with a bootstrap 95% CI over holdout rows, and the n's. A
    training set with a single class yields a constant predictor (AUC 0.5), not an error.
    """
    train_all, holdout_all = to_pandas(train_df), to_pandas(holdout_df)
    train = _drop_null_target(train_all, target)
    holdout = _drop_null_target(holdout_all, target)
    x_tr_df, y_tr = _split_xy(train, target)
    x_te_df, y_te = _split_xy(holdout, target)
    x_te_df = _columns_of(
        x_tr_df,
        x_te_df,
        "holdout lacks columns of the training data",
        "train and holdout must share their columns",
    )
    if len(train) == 0 or len(holdout) == 0:
        raise DataError(
            "ml_efficacy needs training and holdout rows with a label",
            column=target,
            fix=f"{len(train_all) - len(train)} training and {len(holdout_all) - len(holdout)} "
            "holdout rows have no label; fill or choose another target",
        )
    minority = minority if minority is not None else _least_frequent(y_te)
    classes = sorted(set(y_tr.unique()) | set(y_te.unique()))
    y_te_np = y_te.to_numpy()
    x_tr, x_te, is_cat = _encode(x_tr_df, x_te_df, onehot=(model == "logreg"))
    train_classes = sorted(y_tr.unique())
    proba = np.zeros((len(holdout), len(classes)))
    if len(train_classes) < 2:
        pred = np.full(len(holdout), train_classes[0], dtype=object)
        proba[:, classes.index(train_classes[0])] = 1.0
    else:
        # early stopping holds out a stratified split: impossible when a class has one row
        rare = int(y_tr.value_counts().min()) < 2
        clf = make_classifier(
            str(model),
            seed=seed,
            categorical=np.array(is_cat, dtype=bool) if any(is_cat) else None,
            early_stopping=not rare,
            max_iter=2000 if model == "logreg" else None,
            scale=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(x_tr, y_tr.to_numpy())
            p = clf.predict_proba(x_te)
        for j, c in enumerate(clf.classes_):
            proba[:, classes.index(str(c))] = p[:, j]
        pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    point = _scores(y_te_np, pred, proba, classes, minority)
    out: dict[str, Any] = {
        "model": str(model),
        "target": target,
        "minority_class": minority,
        "n_train": int(len(train)),
        "n": int(len(holdout)),
        # rows without a label (null, NaN or blank) are left out and counted here
        "n_train_null_labels_dropped": int(len(train_all) - len(train)),
        "n_null_labels_dropped": int(len(holdout_all) - len(holdout)),
        "train_classes": train_classes,
        **point,
    }
    if predictions:
        out["predictions"] = {"y": y_te_np, "pred": pred, "proba": proba, "classes": classes}
    if n_boot > 0:
        boots: dict[str, list[float]] = {k: [] for k in point}
        for idx in bootstrap_indices(len(holdout), n_boot, seed):
            s = _scores(y_te_np[idx], pred[idx], proba[idx], classes, minority)
            for k, v in s.items():
                boots[k].append(v)
        for k, vals in boots.items():
            lo, hi = percentile_interval(vals, finite_only=True)
            out[f"{k}_ci_low"] = lo
            out[f"{k}_ci_high"] = hi
    return out


def tstr(
    synthetic: Any, real_train: Any, holdout: Any, target: str, **options: Any
) -> dict[str, Any]:
    """Train-on-synthetic-test-on-real next to train-on-real-test-on-real, on the same holdout.

    `options`: `ml_efficacy`'s model, seed and n_boot (its defaults when left out), the same for
    both. `*_gap` figures are TRTR minus TSTR (positive = the synthetic data loses that much).
    Rows without a label are left out of every frame; `null_labels_dropped` counts them per frame.
    """
    holdout_df = to_pandas(holdout)
    minority = _least_frequent(_split_xy(_drop_null_target(holdout_df, target), target)[1])
    s = ml_efficacy(synthetic, holdout_df, target, minority=minority, **options)
    r = ml_efficacy(real_train, holdout_df, target, minority=minority, **options)
    return {
        "tstr": s,
        "trtr": r,
        "null_labels_dropped": {
            "synthetic": s["n_train_null_labels_dropped"],
            "real": r["n_train_null_labels_dropped"],
            "holdout": s["n_null_labels_dropped"],
        },
        "accuracy_gap": r["accuracy"] - s["accuracy"],
        "minority_f1_gap": r["minority_f1"] - s["minority_f1"],
        "auc_gap": r["auc"] - s["auc"],
    }


def sdmetrics_metadata(df: pd.DataFrame, sdtypes: dict[str, str] | None = None) -> dict[str, Any]:
    """A single-table SDMetrics metadata dict (numerical / categorical / datetime / id)."""
    cols: dict[str, Any] = {}
    for c in df.columns:
        if sdtypes and c in sdtypes:
            cols[c] = {"sdtype": sdtypes[c]}
        elif pd.api.types.is_bool_dtype(df[c]):
            cols[c] = {"sdtype": "boolean"}
        elif pd.api.types.is_numeric_dtype(df[c]):
            cols[c] = {"sdtype": "numerical"}
        elif pd.api.types.is_datetime64_any_dtype(df[c]):
            cols[c] = {"sdtype": "datetime"}
        else:
            cols[c] = {"sdtype": "categorical"}
    return {"columns": cols}


def _columns_of(ref: pd.DataFrame, other: pd.DataFrame, lacks: str, fix: str) -> pd.DataFrame:
    """`other` cut to `ref`'s columns in `ref`'s order; a DataError naming any it lacks."""
    missing = [c for c in ref.columns if c not in other.columns]
    if missing:
        raise DataError(f"{lacks}: {', '.join(map(str, missing))}", column=str(missing[0]), fix=fix)
    return other[list(ref.columns)]


def quality_report(
    real: Any, synthetic: Any, sdtypes: dict[str, str] | None = None
) -> dict[str, Any]:
    """SDMetrics QualityReport: overall score, Column Shapes, Column Pair Trends, per-column."""
    from sdmetrics.reports import QualityReport

    r = to_pandas(real)
    s = to_pandas(synthetic)
    s = _columns_of(
        r,
        s,
        "synthetic data lacks columns of the real data",
        "compare frames with the same columns",
    )
    meta = sdmetrics_metadata(r, sdtypes)
    meta["columns"] = {c: v for c, v in meta["columns"].items() if v["sdtype"] != "id"}
    cols = list(meta["columns"])
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({"t": r[cols]}, {"t": s[cols]}, {"tables": {"t": meta}}, verbose=False)
    props = report.get_properties()
    shapes = report.get_details("Column Shapes")
    pairs = report.get_details("Column Pair Trends")
    prop_scores = {str(row["Property"]): float(row["Score"]) for _, row in props.iterrows()}
    return {
        "score": float(report.get_score()),
        "column_shapes": prop_scores.get("Column Shapes", float("nan")),
        "column_pair_trends": prop_scores.get("Column Pair Trends", float("nan")),
        "columns": [
            {
                "column": str(row["Column"]),
                "metric": str(row["Metric"]),
                "score": float(row["Score"]),
            }
            for _, row in shapes.iterrows()
        ],
        "n_pairs": int(len(pairs)),
        "n_real": int(len(r)),
        "n_synthetic": int(len(s)),
    }
