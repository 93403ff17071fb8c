"""The release decision from the command line: audit + gate on DATA refs or files, recorded.

`audit_release` reads REAL, SYNTHETIC and HOLDOUT (store refs/ids or files, `read_data`), runs
`tamis.privacy.audit.release_audit` under the policy file, writes the HTML page and its JSON when
asked, and leaves an audit record under `<store>/audits/` (`tamis.pipelines.audit_records`)
when an input is a store version or the store exists. `canary_audit_run` is the empirical-epsilon
audit of a synthesizer step type. The CLI only formats what these return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tamis.pipelines.data import Data, read_data


def provenance(data: Data) -> dict[str, Any]:
    """Where DATA came from: `{ref, version, manifest}` for a store version, `{path}` for a file."""
    if data.from_store:
        return {"ref": data.ref, "version": data.version, "manifest": data.manifest}
    return {"path": str(data.path)}


@dataclass
class ReleaseRun:
    """What `tamis audit` shows: the JSON payload (every figure, the gate, the inputs)."""

    payload: dict[str, Any]
    gate: dict[str, Any]
    html: Path | None


def _recorded(store: Path, inputs: dict[str, dict[str, Any]]) -> bool:
    """The decision is recorded in the store when an input is a version or the store exists."""
    return any(p.get("version") for p in inputs.values()) or (store / "versions").is_dir()


def audit_release(
    real: str,
    synthetic: str,
    holdout: str,
    policy_path: Path,
    *,
    store: Path,
    seed: int = 0,
    html: Path | None = None,
    progress: Callable[..., None] | None = None,
) -> ReleaseRun:
    """Audit SYNTHETIC against REAL and HOLDOUT under the policy file; write and record it."""
    from tamis.privacy.audit.gate import load_policy
    from tamis.privacy.audit.release import check_policy, release_audit
    from tamis.privacy.audit.report import build_html, to_json, write_json

    policy = load_policy(policy_path)
    real_data = read_data(real, store, what="real")
    # a threshold naming no figure is a typo in the policy: an error (exit 1), before any work
    check_policy(policy, None, real_data.frame.columns, str(policy_path))
    syn_data = read_data(synthetic, store, what="synthetic")
    hold_data = read_data(holdout, store, what="holdout")
    inputs = {
        "real": provenance(real_data),
        "synthetic": provenance(syn_data),
        "holdout": provenance(hold_data),
    }
    outcome = release_audit(
        real_data.frame,
        syn_data.frame,
        hold_data.frame,
        policy=policy,
        policy_file=str(policy_path),
        synthetic_manifest=syn_data.manifest,
        seed=seed,
        progress=progress,
    )
    gate = outcome.gate
    assert gate is not None
    ledger = ((syn_data.manifest or {}).get("report") or {}).get("privacy_ledger")
    payload: dict[str, Any] = {
        "passed": gate["passed"],
        "gate": gate,
        "policy": str(policy_path),
        "inputs": {
            k: {kk: vv for kk, vv in v.items() if kk != "manifest"} for k, v in inputs.items()
        },
        "audit": outcome.result.report,
    }
    if ledger:
        payload["privacy_ledger"] = ledger
    payload = to_json(payload)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(build_html(outcome.result, gate, ledger))
        write_json(payload, html.with_suffix(".json"))
        payload["html"] = str(html)
    if _recorded(store, inputs):
        from tamis.pipelines.audit_records import record_audit

        # the release decision leaves a trace in the store (see `tamis show VERSION`)
        record = record_audit(
            store,
            inputs=inputs,
            policy_path=policy_path,
            gate=gate,
            payload=payload,
            seed=seed,
            html=html,
        )
        payload["audit_record"] = str(record)
    return ReleaseRun(payload=payload, gate=gate, html=html)


def canary_audit_run(
    data: str,
    synthesizer: str,
    params: dict[str, Any],
    *,
    store: Path,
    canary: dict[str, Any] | None = None,
    trials: int = 100,
    **settings: Any,
) -> dict[str, Any]:
    """Empirical epsilon of a synthesizer step type (or `copy`) from fits with and without a
    canary row on DATA; the payload `tamis audit-canary` shows. `settings`: the other keyword
    arguments of `tamis.privacy.audit.canary.canary_audit` (score, delta, confidence,
    claimed_epsilon, seed), with its defaults."""
    from tamis.privacy.audit.canary import canary_audit

    read = read_data(data, store, what="data")
    frame = read.frame

    if synthesizer == "copy":

        def fit(df: pl.DataFrame, s: int) -> pl.DataFrame:
            return df

    else:
        from tamis.pipelines.registry import get_step_type
        from tamis.pipelines.runner import run_step

        get_step_type(synthesizer)  # an unknown name is a clear error before any fit

        def fit(df: pl.DataFrame, s: int) -> pl.DataFrame:
            frames = run_step(synthesizer, {"input": df}, params, seed=s).frames
            got = frames.get("data", next(iter(frames.values())))
            return got.collect() if isinstance(got, pl.LazyFrame) else got

    canary_frame = pl.DataFrame([canary]) if canary else None
    result = canary_audit(fit, frame, canary_frame, trials=trials, **settings)
    prov = {k: v for k, v in provenance(read).items() if k != "manifest"}
    return {"data": prov, "synthesizer": synthesizer, "params": params, **result}
