"""Multi-annotator consensus (CROWDLAB via `cleanlab.multiannotator`) and gold-standard drift.

    out, report = consensus(df, ConsensusConfig(item="item", annotator="worker", label="label"))
    # one row per item: label (consensus), consensus_quality_score, annotator_agreement,
    # num_annotations, is_low_agreement_issue, low_agreement_score (= agreement; low = bad)

CROWDLAB needs a classifier's predicted probabilities per item. With `features`/`text` (item-level
columns), they are out-of-fold probabilities of the default model (see `label_features`) trained on
the majority-vote labels, as cleanlab recommends. Without features they are the smoothed vote
shares of each item (`(votes + 1/K) / (m + 1)`), so CROWDLAB then weighs annotators by how often
they agree with the others - a weaker signal, said in `report["pred_probs"]`.

Annotations with a null (or NaN) label are dropped (counted in `report["null_labels_dropped"]`,
with a warning), as are annotations without an item or annotator.

Low-agreement items (`annotator_agreement < min_agreement`, or fewer than `min_annotations`
labels) are flagged; `low_agreement: drop` removes them and `adjudicate` removes them and lists
them (with every annotator's label) in the `adjudication` table for a person to decide.

Gold drift: with a `gold` column, each annotator's accuracy on gold items per time window, and a
drift flag (see `tamis.curate.gold`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.agreement import (
    agreement_summary,
    check_annotations,
    coded_labels,
    vote_counts,
)
from tamis.curate.gold import annotator_gold_accuracy, consensus_gold_accuracy, gold_accuracy_drift
from tamis.curate.label_column import drop_null_labels
from tamis.errors import DataError

LowAgreement = Literal["flag", "drop", "adjudicate"]
#: the columns `consensus` adds to the item-level columns, with their dtypes
CONSENSUS_COLUMNS = {
    "consensus_quality_score": pl.Float64,
    "annotator_agreement": pl.Float64,
    "num_annotations": pl.Int64,
    "is_low_agreement_issue": pl.Boolean,
    "low_agreement_score": pl.Float64,
}


class ConsensusConfig(Config):
    """How `consensus` turns annotations into one label per item (the `consensus` params)."""

    item: str = Field(default="item", description="the item id column")
    annotator: str = Field(default="annotator", description="the annotator id column")
    label: str = Field(default="label", description="the label column")
    gold: str | None = Field(default=None, description="a gold-label column (null where none)")
    time: str | None = Field(
        default=None, description="a date/datetime or numeric column for gold-drift windows"
    )
    method: Literal["crowdlab", "majority"] = Field(
        default="crowdlab", description="consensus: CROWDLAB best quality, or majority vote"
    )
    features: list[str] | None = Field(
        default=None, description="item-level feature columns for the CROWDLAB model"
    )
    text: str | None = Field(default=None, description="an item-level text column for the model")
    min_agreement: float = Field(
        default=0.5, ge=0.0, le=1.0, description="items whose annotator agreement is below: low"
    )
    min_annotations: int = Field(default=1, ge=1, description="items with fewer labels: low")
    low_agreement: LowAgreement = Field(
        default="flag",
        description="flag keeps them; drop removes them; adjudicate removes and exports them",
    )
    window: str | int = Field(
        default=50, description="gold-drift window: '1w' for dates, a number otherwise"
    )
    drift_threshold: float = Field(
        default=0.1, ge=0.0, le=1.0, description="accuracy drop vs the first window that counts"
    )
    min_window_items: int = Field(default=10, ge=1, description="gold items a window needs")
    folds: int = Field(default=5, ge=2, description="folds of the item model (with features)")

    def carried(self, columns: list[str]) -> list[str]:
        """The item-level columns kept (first value per item): all but annotator/label/gold/time."""
        return [c for c in columns if c not in (self.annotator, self.label, self.gold, self.time)]


def output_schema(schema: pl.Schema, config: ConsensusConfig) -> pl.Schema:
    """One row per item: the item-level columns (gold last), the consensus label, the scores."""
    out = {config.item: schema.get(config.item, pl.Unknown)}
    out.update({c: schema[c] for c in config.carried(list(schema.names())) if c != config.item})
    if config.gold is not None:
        out[config.gold] = schema.get(config.gold, pl.Unknown)
    out[config.label] = schema.get(config.label, pl.Unknown)
    return pl.Schema({**out, **CONSENSUS_COLUMNS})


def _item_pred_probs(
    items: pl.DataFrame,
    majority: np.ndarray,
    counts: np.ndarray,
    config: ConsensusConfig,
    *,
    seed: int,
) -> tuple[np.ndarray, str]:
    k = counts.shape[1]
    if config.features is None and config.text is None:
        m = counts.sum(axis=1, keepdims=True)
        return (counts + 1.0 / k) / (m + 1.0), "smoothed vote shares (no features given)"
    from tamis.curate.label_features import feature_frame, make_model, resolve_features
    from tamis.curate.pred_probs import choose_folds, out_of_fold_pred_probs

    spec = resolve_features(items, label=None, features=config.features, text=config.text)
    present = np.unique(majority)
    if len(present) < k:
        raise DataError(
            "some class is never the majority label; cannot fit the item model",
            fix="leave features/text out to use vote shares",
        )
    counts_by_class = {str(c): int((majority == c).sum()) for c in range(k)}
    nf, _ = choose_folds(counts_by_class, config.folds, label=config.label)
    probs = out_of_fold_pred_probs(
        feature_frame(items, spec),
        majority,
        make_model(spec, "auto", seed=seed),
        folds=nf,
        seed=seed,
    )
    return probs, f"out-of-fold model on {', '.join(spec.columns)} ({nf} folds)"


def consensus(
    df: pl.DataFrame,
    config: ConsensusConfig,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A long annotation table -> one labelled row per item, with agreement columns and a report.

    Item-level columns (any column other than annotator/label/gold/time) are carried over with
    their first value per item. `report["tables"]` holds `annotators`, `pairwise_kappa`,
    `adjudication` and (with `gold`) `gold_drift`.
    """
    from tamis.curate.label_features import import_cleanlab

    import_cleanlab()  # without its process-wide warnings.filterwarnings("ignore")
    import cleanlab.multiannotator as ma

    item, annotator, label, gold = config.item, config.annotator, config.label, config.gold
    say = progress or (lambda _m: None)
    rows_in = df.height
    # a null label is not a class: those annotations are dropped (and counted)
    df, n_null, warns = drop_null_labels(df, label, purpose="consensus", rows="annotation(s)")
    data, dupes = check_annotations(df, item=item, annotator=annotator, label=label)
    say("agreement statistics")
    summary, pairs = agreement_summary(data, item=item, annotator=annotator, label=label, seed=seed)
    counts, classes = vote_counts(data, item=item, label=label)
    if len(classes) < 2:
        raise DataError(
            "every annotation has the same label; nothing to reach consensus on",
            column=label,
            fix="check the label column",
        )
    items = data.get_column(item).unique(maintain_order=True)
    coded, wide = coded_labels(data, item=item, annotator=annotator, label=label, items=items)
    rng = np.random.default_rng(seed)
    tie_break = rng.random(counts.shape) * 1e-6
    majority = (counts + tie_break).argmax(axis=1)
    first = data.group_by(item, maintain_order=True).agg(
        [pl.col(c).first() for c in config.carried(data.columns) if c != item]
        + ([pl.col(gold).drop_nulls().first().alias(gold)] if gold else [])
    )
    item_frame = pl.DataFrame({item: items}).join(first, on=item, how="left", maintain_order="left")
    say("consensus labels")
    probs, probs_note = _item_pred_probs(item_frame, majority, counts, config, seed=seed)
    res = ma.get_label_quality_multiannotator(
        wide,
        probs,
        consensus_method="best_quality" if config.method == "crowdlab" else "majority_vote",
        verbose=False,
    )
    lq = res["label_quality"]
    agreement = lq["annotator_agreement"].to_numpy().astype(np.float64)
    n_ann = lq["num_annotations"].to_numpy().astype(np.int64)
    low = (agreement < config.min_agreement) | (n_ann < config.min_annotations)
    class_s = pl.Series(label, classes, dtype=data.schema[label])
    out = item_frame.with_columns(
        class_s.gather(pl.Series(lq["consensus_label"].to_numpy().astype(np.int64))).alias(label),
        pl.Series(
            "consensus_quality_score", lq["consensus_quality_score"].to_numpy(), dtype=pl.Float64
        ),
        pl.Series("annotator_agreement", agreement, dtype=pl.Float64),
        pl.Series("num_annotations", n_ann, dtype=pl.Int64),
        pl.Series("is_low_agreement_issue", low, dtype=pl.Boolean),
        pl.Series("low_agreement_score", agreement, dtype=pl.Float64),
    )
    stats = res["annotator_stats"].reset_index(names="annotator")
    ann_table = pl.from_pandas(
        stats[
            ["annotator", "annotator_quality", "agreement_with_consensus", "num_examples_labeled"]
        ]
    ).with_columns(pl.col("annotator").cast(pl.String))
    report: dict[str, Any] = {
        **summary,
        "duplicates_dropped": dupes,
        "null_labels_dropped": n_null,
        "warnings": warns,
        "method": config.method,
        "pred_probs": probs_note,
    }
    gold_tables: dict[str, pl.DataFrame] = {}
    if gold is not None:
        ann_table = ann_table.join(
            annotator_gold_accuracy(data, annotator=annotator, label=label, gold=gold),
            on="annotator",
            how="left",
        )
        gold_tables["gold_drift"] = _gold_report(data, out, config, report)
    adjudication = _adjudication(out, coded, config)
    if config.low_agreement in ("drop", "adjudicate"):
        out = out.filter(~pl.col("is_low_agreement_issue"))
    report.update(
        {
            "rows_in": rows_in,
            "rows_out": out.height,
            "low_agreement": int(low.sum()),
            "low_agreement_action": config.low_agreement,
            "min_agreement": config.min_agreement,
            "mean_annotator_agreement": float(np.nanmean(agreement)),
            "annotator_table": ann_table.sort("annotator_quality").head(20).to_dicts(),
        }
    )
    report["tables"] = {
        "annotators": ann_table,
        "pairwise_kappa": pairs,
        "adjudication": adjudication,
        **gold_tables,
    }
    return out, report


def _gold_report(
    data: pl.DataFrame, out: pl.DataFrame, config: ConsensusConfig, report: dict[str, Any]
) -> pl.DataFrame:
    """Gold drift per annotator and window (returned) and its summary (into `report`)."""
    gold = str(config.gold)
    drift = gold_accuracy_drift(data, config)
    flagged = drift.filter(pl.col("drift"))
    report["gold_drift"] = {
        "windows": drift.height,
        "drift_windows": flagged.height,
        "annotators_drifting": sorted(set(flagged.get_column("annotator").to_list())),
    }
    accuracy = consensus_gold_accuracy(out, label=config.label, gold=gold)
    if accuracy is not None:
        report["consensus_gold_accuracy"] = accuracy
    return drift


def _adjudication(out: pl.DataFrame, coded: pl.DataFrame, config: ConsensusConfig) -> pl.DataFrame:
    """The low-agreement items, lowest agreement first, with every annotator's vote."""
    item, annotator, label = config.item, config.annotator, config.label
    votes = (
        coded.sort("_a")
        .group_by(item, maintain_order=True)
        .agg(
            pl.format("{}={}", pl.col(annotator).cast(pl.String), pl.col(label).cast(pl.String))
            .str.join(", ")
            .alias("votes")
        )
    )
    return (
        out.filter(pl.col("is_low_agreement_issue"))
        .select(
            item,
            pl.col(label).alias("consensus_label"),
            "annotator_agreement",
            "num_annotations",
            "consensus_quality_score",
        )
        .join(votes, on=item, how="left", maintain_order="left")
        .sort("annotator_agreement")
    )
