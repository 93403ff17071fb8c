"""What both privacy ledgers share (DP-SGD's `PrivacyLedger`, zCDP's `ZCDPLedger`): the refusal
of a total over the target, and the budget part of a DP synthesizer step's report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from tamis.errors import PrivacyError


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
