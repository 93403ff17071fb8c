"""Examples of the privacy group: SDV synthesizers, DP synthesizers and the privacy audit."""

from __future__ import annotations

import polars as pl
from _example import Example, tabular_frame


def _table() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    return {"input": tabular_frame(120)}


def _audit_inputs() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    """Real training rows, synthetic rows of the same schema, and a real holdout."""
    return {
        "real": tabular_frame(120, seed=0),
        "synthetic": tabular_frame(120, seed=1),
        "holdout": tabular_frame(120, seed=2),
    }


#: public metadata of `tabular_frame` (DP synthesizers never learn domains from private rows)
PUBLIC = {
    "age": {"bounds": [18, 80]},
    "hours": {"bounds": [10, 60]},
    "education": {"categories": ["HS", "Bachelors", "Masters", "Some-college"]},
    "sex": {"categories": ["Male", "Female"]},
    "income": {"categories": ["<=50K", ">50K"]},
}

TINY_CTGAN = {
    "epsilon": 3.0,
    "epochs": 1,
    "batch_size": 60,
    "embedding_dim": 8,
    "generator_dim": [16],
    "discriminator_dim": [16],
    "n_modes": 3,
    "threads": 1,
    "accountant": "rdp",
    "columns": PUBLIC,
}

EXAMPLES = {
    "ctgan": Example(
        _table, {"epochs": 1, "batch_size": 60, "rows": 50, "quality": False}, needs=("sdv",)
    ),
    "tvae": Example(
        _table, {"epochs": 1, "batch_size": 60, "rows": 50, "quality": False}, needs=("sdv",)
    ),
    "gaussian_copula": Example(_table, {"rows": 50, "quality": False}, needs=("sdv",)),
    "dp_ctgan": Example(_table, {**TINY_CTGAN, "rows": 50}, needs=("torch", "opacus")),
    "dp_mst": Example(
        _table, {"epsilon": 1.0, "bins": 8, "estimator": "tree", "columns": PUBLIC, "rows": 50}
    ),
    "dp_aim": Example(
        _table,
        {
            "epsilon": 1.0,
            "bins": 4,
            "columns": PUBLIC,
            "rows": 50,
            "iters": 50,
            "round_iters": 10,
            "max_rounds": 2,
        },
    ),
    "privacy_audit": Example(
        _audit_inputs,
        {
            "n_eval": 50,
            "n_boot": 0,
            "quality": False,
            "disclosure": False,
            "anonymeter": False,
            "record_risk_top_k": 3,
        },
        needs=("sdmetrics",),
    ),
}
