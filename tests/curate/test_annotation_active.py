"""ActiveLab ranking (issue 18): the `active_learning` step against cleanlab called directly on a
pandas pivot of the same annotations, and `tamis annotate export --top N` taking its ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tamis.curate.annotation.active import ActiveLearningConfig, rank_for_labeling
from tamis.errors import DataError
from tamis.pipelines.annotate import export_annotations
from tamis.pipelines.hashing import hash_json
from tamis.pipelines.steps.active_learning import ActiveLearning
from tamis.pipelines.steps.base import StepContext
from tamis.pipelines.store import Store


def put(store: Store, frame: pl.DataFrame, name: str) -> str:
    vid = hash_json({"name": name, "rows": frame.write_json()})
    store.write_version(
        version_id=vid, name=name, frame=frame, parents=[], step={"name": name}, seed=None
    )
    store.set_ref(name, vid)
    return vid


def digits_crowd(n_labelled: int = 200) -> tuple[pl.DataFrame, pl.DataFrame]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:600], y[:600]
    items = pl.DataFrame(x, schema=[f"p{i}" for i in range(64)]).with_columns(
        pl.Series("item", [f"d{i:04d}" for i in range(len(y))])
    )
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_labelled):
        for a, e in (("r1", 0.1), ("r2", 0.25), ("r3", 0.4)):
            if a == "r3" and i % 2:
                continue
            lab = y[i] if rng.random() > e else rng.integers(10)
            rows.append((f"d{i:04d}", a, f"c{lab}"))
    return items, pl.DataFrame(rows, schema=["item", "annotator", "label"], orient="row")


def test_activelab_scores_match_cleanlab_directly() -> None:
    from cleanlab.multiannotator import get_active_learning_scores

    items, ann = digits_crowd()
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(10), size=items.height)
    probs = [f"prob_c{k}" for k in range(10)]
    items = items.with_columns([pl.Series(c, p[:, k]) for k, c in enumerate(probs)])
    out, report = rank_for_labeling(items, ann, probs=probs)
    assert report["labelled_items"] == 200 and report["unlabelled_items"] == 400
    # the same computation by hand: pandas pivot, cleanlab's function
    wide = ann.to_pandas().pivot(index="item", columns="annotator", values="label")
    codes = wide.apply(lambda s: s.map(lambda v: np.nan if pd.isna(v) else int(v[1:])))
    pdf = items.to_pandas().set_index("item")
    lab_ids = sorted(codes.index)
    unl_ids = sorted(set(pdf.index) - set(lab_ids))
    s_lab, s_unl = get_active_learning_scores(
        codes.loc[lab_ids].astype(float),
        pred_probs=pdf.loc[lab_ids, probs].to_numpy(),
        pred_probs_unlabeled=pdf.loc[unl_ids, probs].to_numpy(),
    )
    want = pd.Series(np.concatenate([s_lab, s_unl]), index=lab_ids + unl_ids)
    got = out.to_pandas().set_index("item")
    np.testing.assert_allclose(got.loc[want.index, "active_learning_score"], want, rtol=1e-12)
    assert (
        got.sort_values("active_learning_rank").index[:20]
        == want.sort_values(kind="stable").index[:20]
    ).all()
    # row order never matters
    again, _ = rank_for_labeling(
        items.reverse(), ann.sample(fraction=1.0, shuffle=True, seed=2), probs=probs
    )
    assert again["item"].to_list() == out["item"].to_list()


def test_step_with_model_and_export_top(store: Store, tmp_path: Path) -> None:
    items, ann = digits_crowd()
    ctx = StepContext(step="al", pipeline="p", seed=0, artifacts_dir=tmp_path)
    params = ActiveLearningConfig(features=[f"p{i}" for i in range(64)], folds=3)
    res = ActiveLearning().run({"input": items.lazy(), "annotations": ann.lazy()}, params, ctx)
    ranked = res.frames["data"]
    assert ranked["active_learning_rank"].to_list() == list(range(1, 601))
    assert "out-of-fold" in res.report["pred_probs"]
    put(store, ranked, "t/ranked")
    r = export_annotations(
        store,
        "t/ranked",
        tool="label-studio",
        task="classification",
        to=tmp_path / "next",
        labels=[f"c{k}" for k in range(10)],
        fields=["p0", "p1"],
        top=25,
    )
    assert r["tasks"] == 25
    sent = set(store.read(r["id"])["item"].to_list())
    assert sent == set(ranked.head(25)["item"].to_list())
    assert len(json.loads((tmp_path / "next" / "tasks.json").read_text())) == 25


def test_needs_a_model_or_probs() -> None:
    items, ann = digits_crowd(50)
    with pytest.raises(DataError, match="probabilities"):
        rank_for_labeling(items, ann)
