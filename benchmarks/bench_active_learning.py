"""Benchmark: ActiveLab (tamis `active_learning`) vs random choice of what to label next.

    .venv/bin/python benchmarks/bench_active_learning.py                 # digits, 3 seeds
    .venv/bin/python benchmarks/bench_active_learning.py --rounds 4 --seeds 1   # quick

Data: scikit-learn's shipped handwritten digits (1,797 images, 10 classes), split per seed into
a pool of 1,297 items and a test set of 500. Three simulated raters with uniform error rates 10%,
25% and 40% (a wrong answer is a uniformly random other class). The loop starts with 100
annotations (random items, one random rater each) and adds `--batch` (100) annotations per round:

- random: 100 items drawn at random from the pool (labelled or not), each given one more label
  by a rater who has not labelled it yet;
- ActiveLab: the 100 items with the lowest `active_learning_score` from
  `tamis.curate.annotation.active.rank_for_labeling` (cleanlab ActiveLab, labelled and
  unlabelled items ranked together), each given one more label the same way.

Each round, both strategies train the same model (standardised pixels + multinomial logistic
regression) on the CROWDLAB consensus labels of the labelled items (out-of-fold probabilities
from 5-fold CV, `cleanlab.multiannotator.get_label_quality_multiannotator`), and report its test
accuracy. The figure of merit is how many labels ActiveLab needs to reach random's final mean
accuracy (rounds after the shared start), as a share of random's labels (target <= 70%), and
the mean accuracy over those rounds. `--dataset adult` runs the same loop on UCI Adult from the
shared datasets (income >50K, numeric + one-hot columns; test 2,000, pool 3,000).

Prints a table per round and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

ERRORS = (0.10, 0.25, 0.40)


def _model(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.5))


class Crowd:
    def __init__(self, y: np.ndarray, k: int, rng: np.random.Generator) -> None:
        self.y, self.k, self.rng = y, k, rng
        self.labels = np.full((len(y), len(ERRORS)), np.nan)

    def label(self, i: int) -> bool:
        free = np.flatnonzero(np.isnan(self.labels[i]))
        if not len(free):
            return False
        r = int(self.rng.choice(free))
        true = int(self.y[i])
        if self.rng.random() < ERRORS[r]:
            answer = int(self.rng.choice([c for c in range(self.k) if c != true]))
        else:
            answer = true
        self.labels[i, r] = answer
        return True


def _probs(
    x: np.ndarray, y: np.ndarray, labelled: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, Any]:
    """Out-of-fold probabilities for the labelled items (all k classes), model fit on them all."""
    from sklearn.model_selection import StratifiedKFold

    idx = np.flatnonzero(labelled)
    yl = y[idx]
    oof = np.full((len(idx), k), 1.0 / k)
    counts = np.bincount(yl, minlength=k)
    folds = int(max(2, min(5, counts[counts > 0].min())))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tr, te in skf.split(x[idx], yl):
            m = _model(seed).fit(x[idx][tr], yl[tr])
            p = np.full((len(te), k), 1e-6)
            p[:, m.classes_] = m.predict_proba(x[idx][te])
            oof[te] = p / p.sum(axis=1, keepdims=True)
        full = _model(seed).fit(x[idx], yl)
    return oof, full


def _full_probs(model: Any, x: np.ndarray, k: int) -> np.ndarray:
    p = np.full((len(x), k), 1e-6)
    p[:, model.classes_] = model.predict_proba(x)
    return p / p.sum(axis=1, keepdims=True)


def _consensus(
    labels: np.ndarray, x: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """CROWDLAB consensus of the labelled items (majority vote seeds the model)."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator, get_majority_vote_label

    labelled = (~np.isnan(labels)).any(axis=1)
    sub = pd.DataFrame(labels[labelled])
    mv = get_majority_vote_label(sub, verbose=False)
    y = np.full(len(labels), -1)
    y[labelled] = mv
    if (~np.isnan(labels[labelled])).sum(axis=1).max() < 2:
        return y, labelled  # one label per item: nothing for CROWDLAB to weigh
    oof, _ = _probs(x, y, labelled, k, seed)
    res = get_label_quality_multiannotator(sub, oof, verbose=False)
    y[labelled] = res["label_quality"]["consensus_label"].to_numpy()
    return y, labelled


#: (test rows, pool rows) per dataset
SIZES = {"digits": (500, 1297), "adult": (2000, 3000)}


def load(dataset: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Features, integer labels and the number of classes of a real dataset."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x, y, 10
    from _common import ADULT_NUMERIC, load_adult

    df = load_adult("adult.data").drop_nulls()
    cats = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex"]
    dummies = df.select(cats).to_dummies()
    x = np.hstack([df.select(ADULT_NUMERIC).to_numpy().astype(float), dummies.to_numpy()])
    y = (df["income"].str.strip_chars(".") == ">50K").to_numpy().astype(np.int64)
    return x, y, 2


def run(
    strategy: str, seed: int, rounds: int, batch: int, start: int, dataset: str = "digits"
) -> list[dict[str, float]]:
    from tamis.curate.annotation.active import rank_for_labeling

    x_all, y_all, k = load(dataset)
    np.random.seed(seed)  # cleanlab breaks majority-vote ties with the global NumPy RNG
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y_all))
    n_test, n_pool = SIZES[dataset]
    test, pool = perm[:n_test], perm[n_test : n_test + n_pool]
    x, y = x_all[pool], y_all[pool]
    xt, yt = x_all[test], y_all[test]
    crowd = Crowd(y, k, np.random.default_rng([seed, 7]))
    for i in rng.choice(len(y), size=start, replace=False):
        crowd.label(int(i))
    out = []
    n_labels = start
    for rnd in range(rounds + 1):
        cons, labelled = _consensus(crowd.labels, x, k, seed)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _model(seed).fit(x[labelled], cons[labelled])
        acc = float((model.predict(xt) == yt).mean())
        out.append({"round": rnd, "labels": n_labels, "accuracy": acc})
        if rnd == rounds:
            break
        if strategy == "random":
            order = rng.permutation(len(y))
        else:
            oof, full = _probs(x, cons, labelled, k, seed)
            p_all = _full_probs(full, x, k)
            p_all[labelled] = oof
            rows = [
                (int(i), int(r), int(crowd.labels[i, r]))
                for i, r in zip(*np.nonzero(~np.isnan(crowd.labels)), strict=True)
            ]
            ann = pl.DataFrame(rows, schema=["item", "annotator", "label"], orient="row")
            # classes never labelled yet have no column in ActiveLab: keep only those present
            present = sorted(set(ann["label"].to_list()))
            sub = p_all[:, present] / p_all[:, present].sum(axis=1, keepdims=True)
            cols = [f"p{c}" for c in present]
            items = pl.DataFrame(sub, schema=cols).with_columns(
                pl.Series("item", np.arange(len(y)))
            )
            ranked, _ = rank_for_labeling(items, ann, probs=cols)
            order = ranked["item"].to_numpy()
        added = 0
        for i in order:
            if added == batch:
                break
            added += crowd.label(int(i))
        n_labels += added
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--start", type=int, default=100)
    ap.add_argument("--dataset", choices=sorted(SIZES), default="digits")
    args = ap.parse_args()
    t0 = time.time()
    curves: dict[str, list[list[dict[str, float]]]] = {"random": [], "activelab": []}
    for seed in range(args.seeds):
        for strategy in curves:
            curves[strategy].append(
                run(strategy, seed, args.rounds, args.batch, args.start, args.dataset)
            )
            print(f"seed {seed} {strategy}: done ({time.time() - t0:.0f} s)", file=sys.stderr)
    mean = {
        s: [float(np.mean([c[r]["accuracy"] for c in cs])) for r in range(args.rounds + 1)]
        for s, cs in curves.items()
    }
    labels = [c["labels"] for c in curves["random"][0]]
    print(f"{'labels':>7} {'random':>8} {'activelab':>10}")
    for r, n in enumerate(labels):
        print(f"{n:>7} {mean['random'][r]:>8.4f} {mean['activelab'][r]:>10.4f}")
    target = mean["random"][-1]
    # round 0 is the shared start: reaching random's final accuracy there says nothing
    reach = next(
        (labels[r] for r, a in enumerate(mean["activelab"]) if r > 0 and a >= target), None
    )
    auc = {s: float(np.mean(m[1:])) for s, m in mean.items()}
    share = None if reach is None else reach / labels[-1]
    print(
        f"random's final accuracy {target:.4f} with {labels[-1]} labels; ActiveLab reaches it "
        f"with {reach} labels ({'not reached' if share is None else f'{share:.0%}'} of random's)"
    )
    print(
        f"mean accuracy over rounds 1..{args.rounds}: random {auc['random']:.4f}, "
        f"ActiveLab {auc['activelab']:.4f}"
    )
    print(
        json.dumps(
            {
                "benchmark": "active_learning",
                "dataset": f"{args.dataset} (test {SIZES[args.dataset][0]}, pool "
                f"{SIZES[args.dataset][1]})",
                "raters_error": ERRORS,
                "seeds": args.seeds,
                "labels": labels,
                "mean_accuracy": mean,
                "per_seed": curves,
                "random_final_accuracy": target,
                "activelab_labels_to_reach": reach,
                "activelab_share_of_random_labels": share,
                "mean_accuracy_rounds_1_on": auc,
                "seconds": round(time.time() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
