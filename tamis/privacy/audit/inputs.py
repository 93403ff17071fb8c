"""The audited inputs: checked, reduced to the audited columns, aligned, in canonical order.

Every column the config names (marginals, quasi-identifiers, sensitive, public metadata) must be
audited: an error before any work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from tamis.errors import DataError
from tamis.privacy.audit.config import AuditConfig
from tamis.privacy.audit.encode import align
from tamis.privacy.audit.order import canonical, canonical_order

MIN_ROWS = 50


def check_rows(frame: pl.DataFrame, name: str) -> None:
    if frame.height < MIN_ROWS:
        raise DataError(
            f"the {name} data has {frame.height} rows; an audit needs at least {MIN_ROWS}",
            fix=f"give a {name} set of at least {MIN_ROWS} rows",
        )


@dataclass
class Prepared:
    """The audited inputs: the audited columns, aligned to the real data, in canonical order."""

    cols: list[str]
    real: pl.DataFrame
    synthetic: pl.DataFrame
    holdout: pl.DataFrame
    #: the synthetic rows as given (only the audited columns), for validity and workload error
    raw_synthetic: pl.DataFrame
    real_order: np.ndarray
    syn_order: np.ndarray


def prepare(
    real: pl.DataFrame, synthetic: pl.DataFrame, holdout: pl.DataFrame, cfg: AuditConfig
) -> Prepared:
    cols = list(cfg.columns or real.columns)
    for name, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        check_rows(frame, name)
    unknown = [c for c in cols if c not in real.columns]
    if unknown:
        raise DataError(
            "column to audit is not in the real data",
            column=unknown[0],
            field="columns",
            fix=f"columns: {', '.join(real.columns)}",
        )
    real = real.select(cols)
    for name, dtype in real.schema.items():
        if isinstance(dtype, (pl.List, pl.Struct, pl.Array, pl.Object, pl.Binary)):
            raise DataError(
                f"unsupported column type {dtype} for a privacy audit",
                column=name,
                fix="flatten, cast to string, or leave the column out with `columns:`",
            )
    _check_declared_columns(cfg, cols)
    raw_synthetic = synthetic
    synthetic = align(real, synthetic, "synthetic")
    holdout = align(real, holdout, "holdout")
    # one canonical row order, so that no figure depends on the order of the inputs' rows
    syn_order = canonical_order(synthetic)
    real_order = canonical_order(real)
    return Prepared(
        cols=cols,
        real=real[real_order],
        synthetic=synthetic[syn_order],
        holdout=canonical(holdout),
        raw_synthetic=raw_synthetic,
        real_order=real_order,
        syn_order=syn_order,
    )


def _check_declared_columns(cfg: AuditConfig, cols: list[str]) -> None:
    """Every column the config names must be audited: an error before any work."""
    fix = f"columns: {', '.join(cols)}"
    if cfg.marginal.enabled:
        for group in cfg.marginal.marginals or []:
            for c in group:
                if c not in cols:
                    raise DataError(
                        "a column of `marginal.marginals` is not among the audited columns",
                        column=c,
                        field="marginal.marginals",
                        fix=fix,
                    )
    qis, sens = cfg.quasi_identifiers, cfg.sensitive
    for c in [*qis, *sens]:
        if c not in cols:
            raise DataError(
                "declared quasi-identifier/sensitive column is not in the data",
                column=c,
                field="quasi_identifiers" if c in qis else "sensitive",
                fix=fix,
            )
    for c in cfg.public:
        if c not in cols:
            raise DataError(
                "a column with public metadata is not among the audited columns",
                column=c,
                field="public",
                fix=fix,
            )
