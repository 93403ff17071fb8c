"""What both privacy ledgers share (DP-SGD's `PrivacyLedger`, zCDP's `ZCDPLedger`): the refusal
of a total over the target, and the budget part of a DP synthesizer step's config and report;
the check every DP synthesizer makes of its public column metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import Field

from tamis.config import Config
from tamis.errors import PrivacyError, TamisError

EPSILON_HELP = "target epsilon of the whole step (> 0)"


def check_metadata_columns(
    columns: Iterable[str], present: list[str], error: type[TamisError]
) -> None:
    """Refuse public metadata (`columns`) naming a column that is not in the data (`present`)."""
    unknown = sorted(set(columns) - set(present))
    if unknown:
        raise error(
            f"`columns` names columns not in the data: {', '.join(unknown)}",
            field="columns",
            fix=f"valid columns: {', '.join(present)}",
        )


class BudgetConfig(Config):
    """The budget every DP synthesizer's config starts with (DP-CTGAN, MST, AIM)."""

    epsilon: float = Field(default=1.0, description=EPSILON_HELP)
    delta: float | None = Field(
        default=None, description="target delta (< 1/n); default min(1e-5, 0.1/n)"
    )
    rows: int | None = Field(default=None, ge=1, description="rows to sample (default: input rows)")


def within_target(
    total: dict[str, Any], loss: str, *, fix: str, ledger: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`total`, or a PrivacyError naming the composed `loss` when it exceeds the target epsilon
    (a ledger never overruns silently); `ledger()` gives the mechanisms for the error's details."""
    if not total["within_target"]:
        raise PrivacyError(
            f"the composed privacy loss {loss} exceeds the target epsilon="
            f"{total['target_epsilon']:g}",
            field="epsilon",
            fix=fix,
            details={"ledger": ledger()},
        )
    return total


class CheckedLedger:
    """What both ledgers (DP-SGD's and zCDP's) share: the check that refuses an overrun."""

    #: how to get back under the target (the error's fix)
    overrun_fix: ClassVar[str] = "raise epsilon"
    target_epsilon: float
    target_delta: float

    def against_target(self, epsilon: float) -> dict[str, Any]:
        """The end of `total()`: the targets, and whether `epsilon` spent is within them."""
        return {
            "target_epsilon": self.target_epsilon,
            "target_delta": self.target_delta,
            "within_target": epsilon <= self.target_epsilon + 1e-9,
        }

    def total(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self, *, with_total: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def loss_text(self, total: dict[str, Any]) -> str:
        """The composed loss as the error names it."""
        raise NotImplementedError

    def check(self) -> dict[str, Any]:
        """The total; raise PrivacyError when it exceeds the target (never a silent overrun)."""
        tot = self.total()
        return within_target(
            tot,
            self.loss_text(tot),
            fix=self.overrun_fix,
            ledger=lambda: self.to_dict(with_total=False),
        )


def budget_report(
    rows_in: int, rows_out: int, ledger: dict[str, Any], target_epsilon: float
) -> dict[str, Any]:
    """What a DP synthesizer step reports first: rows, the budget spent (rho too for zCDP), the
    target and the whole ledger (`ledger` is a ledger's `to_dict()`)."""
    total = ledger["total"]
    out: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "epsilon_spent": total["epsilon"],
    }
    if "rho" in total:
        out["rho_spent"] = total["rho"]
    out.update(delta=total["delta"], target_epsilon=target_epsilon, privacy_ledger=ledger)
    return out
