"""label_issues: digits correctness bar vs a direct cleanlab baseline, SMS text, bad input."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from tamis.curate.label_issues import LabelIssuesConfig, find_label_issues
from tamis.curate.noise import LabelNoiseConfig, detection_metrics, inject_label_noise
from tamis.errors import DataError
from tamis.pipelines.runner import run_step


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # 2 shared cores: multithreaded BLAS inside lbfgs thrashes (10-100x slower), for both sides.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def digits_noisy() -> tuple[pl.DataFrame, pl.DataFrame]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    df = pl.DataFrame(x, schema=[f"p{i}" for i in range(64)]).with_columns(pl.Series("digit", y))
    noisy, report = inject_label_noise(
        df, LabelNoiseConfig(label="digit", rate=0.2, kind="uniform"), seed=0
    )
    assert report["flipped"] == round(0.2 * df.height)
    return noisy, report["tables"]["noise"]


def test_digits_f1_bar_and_matches_direct_cleanlab(digits_noisy: tuple) -> None:
    import cleanlab.filter
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    noisy, truth = digits_noisy
    with threadpool_limits(limits=1):
        out, report = find_label_issues(
            noisy, LabelIssuesConfig(label="digit", model="logreg", folds=5), seed=0
        )
    ours = detection_metrics(out["is_label_issue"], truth, n_rows=noisy.height)

    # direct baseline: cross_val_predict + cleanlab on the same data and model
    x = noisy.drop("digit").to_numpy()
    y = noisy["digit"].to_numpy()
    probs = cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        x,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )
    base = detection_metrics(cleanlab.filter.find_label_issues(y, probs), truth, n_rows=len(y))
    assert ours["f1"] >= 0.80, ours
    assert abs(ours["f1"] - base["f1"]) <= 0.02, (ours, base)
    assert report["label_issues"] == int(out["is_label_issue"].sum())
    # the flagged rows carry low scores and mostly the true label as suggestion
    flagged = out.with_row_index("row").filter(pl.col("is_label_issue"))
    assert flagged["label_quality_score"].mean() < out["label_quality_score"].mean()
    fixed = flagged.join(truth, on="row")
    assert (fixed["suggested_label"] == fixed["true_label"]).mean() > 0.8
    assert out["label_quality_score"].min() >= 0.0 and out["label_quality_score"].max() <= 1.0


def test_actions_drop_and_relabel(digits_noisy: tuple) -> None:
    noisy, truth = digits_noisy
    small = noisy.head(600)
    flagged, _ = find_label_issues(small, LabelIssuesConfig(label="digit", folds=3))
    dropped, rep = find_label_issues(
        small, LabelIssuesConfig(label="digit", folds=3, action="drop")
    )
    n = int(flagged["is_label_issue"].sum())
    assert n > 0 and dropped.height == small.height - n and rep["dropped"] == n
    assert not dropped["is_label_issue"].any()
    relabelled, rep = find_label_issues(
        small, LabelIssuesConfig(label="digit", folds=3, action="relabel")
    )
    assert relabelled.height == small.height and rep["relabelled"] == n
    changed = relabelled["digit"] != small["digit"]
    assert int(changed.sum()) <= n and relabelled["digit"].dtype == small["digit"].dtype
    assert (
        relabelled.filter(pl.col("is_label_issue"))["digit"]
        == relabelled.filter(pl.col("is_label_issue"))["suggested_label"]
    ).all()


def test_sms_text_end_to_end(sms: pl.DataFrame) -> None:
    out = run_step("label_issues", {"input": sms}, {"label": "Label", "text": "SMS", "top": 10})
    data, report = out.frames["data"], out.report
    assert data.height == sms.height
    assert {"is_label_issue", "label_quality_score", "suggested_label"} <= set(data.columns)
    assert report["model"] == "tfidf + logistic regression"
    assert report["out_of_fold_accuracy"] > 0.95
    assert 0 < report["label_issues"] < 0.05 * sms.height
    assert len(report["top_issues"]) == min(10, report["label_issues"])
    top = report["top_issues"][0]
    assert {"row", "label", "suggested_label", "label_quality_score", "SMS"} <= set(top)
    assert top["label_quality_score"] <= report["top_issues"][-1]["label_quality_score"]
    table = out.tables["label_issues"]
    assert table.height == report["label_issues"]


def test_mixed_tabular_gbm_nan_and_categoricals() -> None:
    rng = np.random.default_rng(1)
    n = 600
    a = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = np.where((a > 0) ^ (colour == "red"), "yes", "no")
    a_nan = np.where(rng.random(n) < 0.1, np.nan, a)
    df = pl.DataFrame({"a": a_nan, "colour": colour, "y": y}).with_columns(
        pl.when(pl.int_range(pl.len()) % 17 == 0)
        .then(None)
        .otherwise(pl.col("colour"))
        .alias("colour")
    )
    for model in ("gbm", "logreg"):
        out, rep = find_label_issues(df, LabelIssuesConfig(label="y", model=model, folds=3))
        assert out.height == n and rep["features"] == ["a", "colour"]
    out, rep = find_label_issues(df, LabelIssuesConfig(label="y", model="gbm", folds=3))
    assert rep["out_of_fold_accuracy"] > 0.8


def test_precomputed_pred_probs_column() -> None:
    y = np.array([0, 1] * 50)
    probs = np.where(y[:, None] == np.arange(2), 0.9, 0.1)
    probs[:5] = probs[:5, ::-1]  # five rows whose model disagrees confidently
    df = pl.DataFrame({"y": y, "pp": probs.tolist()})
    out, rep = find_label_issues(df, LabelIssuesConfig(label="y", pred_probs="pp"))
    assert rep["folds"] is None and "precomputed" in rep["model"]
    assert out["is_label_issue"].to_list()[:5] == [True] * 5
    assert int(out["is_label_issue"].sum()) == 5
    with pytest.raises(DataError, match="entries"):
        find_label_issues(
            df.with_columns(pl.col("pp").list.head(1)),
            LabelIssuesConfig(label="y", pred_probs="pp"),
        )


def test_bad_input() -> None:
    df = pl.DataFrame({"x": np.arange(40, dtype=float), "y": [0, 1] * 20})
    with pytest.raises(DataError, match="label column 'nope'") as e:
        find_label_issues(df, LabelIssuesConfig(label="nope"))
    assert e.value.column == "nope" and e.value.fix
    with pytest.raises(DataError, match="single class"):
        find_label_issues(df.with_columns(pl.lit(1).alias("y")), LabelIssuesConfig(label="y"))
    # null labels are not a class: dropped, counted and warned about (tests/curate/test_null_labels.py)
    with pytest.warns(UserWarning, match="null label"):
        out, rep = find_label_issues(
            df.with_columns(pl.when(pl.col("x") < 2).then(None).otherwise(pl.col("y")).alias("y")),
            LabelIssuesConfig(label="y"),
        )
    assert rep["null_labels_dropped"] == 2 and out.height == 38
    with pytest.raises(DataError, match="entirely null"):
        find_label_issues(
            df.with_columns(pl.lit(None, pl.Int64).alias("y")), LabelIssuesConfig(label="y")
        )
    with pytest.raises(DataError, match="infinite"):
        find_label_issues(
            df.with_columns(pl.lit(float("inf")).alias("x")), LabelIssuesConfig(label="y")
        )
    # a class smaller than folds: folds reduced, with a warning recorded
    small = df.with_columns(pl.when(pl.col("x") < 3).then(2).otherwise(pl.col("y")).alias("y"))
    with pytest.warns(UserWarning, match="using 3 folds"):
        out, rep = find_label_issues(small, LabelIssuesConfig(label="y", folds=5))
    assert rep["folds"] == 3 and rep["warnings"]
    # a single-row class cannot be cross-validated
    with pytest.raises(DataError, match="at least 2 per class"):
        find_label_issues(
            df.with_columns(pl.when(pl.col("x") == 0).then(9).otherwise(pl.col("y")).alias("y")),
            LabelIssuesConfig(label="y"),
        )
    with pytest.raises(DataError, match="feature column"):
        find_label_issues(df, LabelIssuesConfig(label="y", features=["missing"]))


@pytest.mark.slow  # ~20 s, mostly importing torch/transformers; not a correctness bar
def test_local_embedding_model_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tamis.train.tiny import TinyConfig, tiny_causal_lm, train_tokenizer

    rng = np.random.default_rng(0)
    texts = [
        f"{w} {v} again"
        for w, v in zip(
            rng.choice(["good", "fine", "bad", "awful"], 200),
            rng.choice(["day", "meal", "film"], 200),
            strict=True,
        )
    ]
    tok = train_tokenizer(texts, vocab_size=128, min_frequency=1)
    model = tiny_causal_lm(tok, TinyConfig(vocab_size=128), seed=0)
    model.save_pretrained(tmp_path / "enc")
    tok.save_pretrained(tmp_path / "enc")
    df = pl.DataFrame({"t": texts, "y": [t.split()[0] in ("good", "fine") for t in texts]})
    out = run_step(
        "label_issues",
        {"input": df},
        {"label": "y", "text": "t", "embedding_model": str(tmp_path / "enc"), "folds": 3},
    )
    assert out.report["model"].startswith("embeddings(")
    assert out.frames["data"]["label_quality_score"].is_not_null().all()
    with pytest.raises(DataError, match="does not exist"):
        find_label_issues(
            df, LabelIssuesConfig(label="y", text="t", embedding_model=str(tmp_path / "missing"))
        )


def test_detection_precision_recall_match_sklearn(digits_noisy: tuple) -> None:
    """With the truth known (inject_label_noise's truth_column), the report's precision/recall
    equal scikit-learn's on the flags; a strong model gets no weak-model warning."""
    from scipy.stats import binom
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    _, truth = digits_noisy
    # re-inject from the same data and seed, now marking the flips in the data itself
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    df = pl.DataFrame(x, schema=[f"p{i}" for i in range(64)]).with_columns(pl.Series("digit", y))
    marked, rep = inject_label_noise(
        df, LabelNoiseConfig(label="digit", rate=0.2, truth_column="is_injected_noise"), seed=0
    )
    assert marked["is_injected_noise"].to_numpy().nonzero()[0].tolist() == truth["row"].to_list()
    assert (marked["digit"] != df["digit"]).to_list() == marked["is_injected_noise"].to_list()
    out, report = find_label_issues(
        marked, LabelIssuesConfig(label="digit", model="logreg", folds=5), seed=0
    )
    assert "is_injected_noise" not in report["features"]  # the truth is never a feature
    det = report["detection"]
    flags = out["is_label_issue"].to_numpy()
    wrong = (marked["digit"] != df["digit"]).to_numpy()  # independent of the truth column
    assert det["precision"] == pytest.approx(precision_score(wrong, flags))
    assert det["recall"] == pytest.approx(recall_score(wrong, flags))
    assert det["known_wrong"] == truth.height == rep["flipped"]
    # the same with the truth given as the original label
    out2, report2 = find_label_issues(
        marked.drop("is_injected_noise").with_columns(df["digit"].alias("true_digit")),
        LabelIssuesConfig(label="digit", features=[f"p{i}" for i in range(64)], truth="true_digit"),
        seed=0,
    )
    assert report2["detection"]["precision"] == pytest.approx(det["precision"])
    # the model check: accuracy and majority rate recomputed; one-sided binomial tail from scipy
    mc = report["model_check"]
    acc = accuracy_score(marked["digit"], out["suggested_label"])
    maj = marked["digit"].value_counts(normalize=True)["proportion"].max()
    assert mc["out_of_fold_accuracy"] == pytest.approx(acc)
    assert mc["majority_class_rate"] == pytest.approx(maj)
    n, k = marked.height, round(acc * marked.height)
    assert mc["p_value"] == pytest.approx(binom.sf(k - 1, n, maj), rel=1e-6, abs=1e-300)
    assert mc["skill"] == pytest.approx((acc - maj) / (1 - maj))
    assert mc["weak"] is False and not any("too weak" in w for w in report["warnings"])


def test_weak_model_warns_in_report_and_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Features unrelated to the label: confident learning flags correct rows; say so."""
    from typer.testing import CliRunner

    from tamis.cli import app

    rng = np.random.default_rng(3)
    n = 600
    y = (rng.random(n) < 0.35).astype(int)
    df = pl.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": y})
    with pytest.warns(UserWarning, match="too weak"):
        out, report = find_label_issues(df, LabelIssuesConfig(label="y"), seed=0)
    assert report["model_check"]["weak"] is True
    assert report["model_check"]["skill"] < 0.2
    assert any("too weak" in w and "fix:" in w for w in report["warnings"])
    # strong features: no warning
    strong = df.with_columns((pl.col("y") * 3 + pl.col("a") * 0.3).alias("signal"))
    _, rep2 = find_label_issues(strong, LabelIssuesConfig(label="y"), seed=0)
    assert rep2["model_check"]["weak"] is False
    # the CLI prints it as a warning (and again on a cached rebuild)
    df.write_csv(tmp_path / "d.csv")
    (tmp_path / "p.yaml").write_text(
        "name: p\nsources: {d: {path: d.csv}}\nsteps:\n"
        "  li: {use: label_issues, input: d, params: {label: y, action: drop}}\n"
    )
    for _ in range(2):
        res = CliRunner().invoke(
            app, ["build", str(tmp_path / "p.yaml"), "--store", str(tmp_path / "st")]
        )
        assert res.exit_code == 0, res.output
        assert "warning:" in res.output and "too weak" in res.output


@pytest.mark.slow  # ~25 s: the demo pipeline up to `cleaned` (validate alone takes ~12 s)
def test_demo_label_cleaning_summary_is_honest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The demo's label-cleaning line: flips found, correct rows dropped, the weak model, all
    recomputed with scikit-learn from the stored versions."""
    import shutil
    from importlib import resources

    from sklearn.metrics import precision_score, recall_score

    from tamis.pipelines.demo import label_cleaning_summary, write_demo_data
    from tamis.pipelines.runner import build
    from tamis.pipelines.store import Store

    write_demo_data(tmp_path)
    with resources.as_file(resources.files("tamis.pipelines.builtin").joinpath("demo.yaml")) as f:
        shutil.copyfile(f, tmp_path / "demo.yaml")
    store = Store(tmp_path / "st")
    result = build(tmp_path / "demo.yaml", store, targets=["cleaned"])
    summary = label_cleaning_summary(store, "demo")
    train, noisy = store.read("demo/parts.train"), store.read("demo/noisy")
    wrong = (train["had_affair"] != noisy["had_affair"]).to_numpy()
    assert wrong.tolist() == noisy["is_injected_noise"].to_list()
    flagged = run_step(
        "label_issues",
        {"input": noisy},
        {"label": "had_affair", "model": "logreg", "folds": 5, "action": "flag"},
    ).frames["data"]["is_label_issue"]
    assert summary["flagged"] == int(flagged.sum())
    assert summary["precision"] == pytest.approx(precision_score(wrong, flagged.to_numpy()))
    assert summary["recall"] == pytest.approx(recall_score(wrong, flagged.to_numpy()))
    assert summary["injected_flips"] == int(wrong.sum())
    assert summary["weak_model"] is True and "too weak" in summary["summary"]
    cleaned = next(s for s in result.steps if s.name == "cleaned")
    assert any("too weak" in w for w in cleaned.warnings)
    assert store.read("demo/cleaned").height == noisy.height - summary["flagged"]
