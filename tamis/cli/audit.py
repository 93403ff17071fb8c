"""`tamis audit REAL SYNTHETIC --holdout H --policy P [--html OUT] [--json] [--store DIR]`.

REAL, SYNTHETIC and H are store refs/ids or files (.parquet/.csv/.tsv/.jsonl). The policy file is
required: the release gate never decides from defaults. Exit 0 when every check passes, 3 with
each failed check named when any fails, 1 on an error (a threshold naming no figure included).
Each run is recorded under `<store>/audits/` when an input is a store version or the store exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tamis.cli.render import (
    DATA_SUFFIXES,
    DEFAULT_STORE,
    cli_errors,
    emit,
    err,
    json_option,
    missing_file,
    out,
    store_option,
)
from tamis.errors import GateFailed, TamisError
from tamis.safe_yaml import safe_load_yaml

SUFFIXES = {**DATA_SUFFIXES, ".data": "csv", ".test": "csv", ".txt": "csv"}


def resolve_frame(ref: str, store: Path, what: str) -> tuple[Any, dict[str, Any]]:
    """(frame, provenance) for a file path or a store ref/id; manifests come with store refs."""
    path = Path(ref)
    if path.exists() and path.is_file():
        from tamis.pipelines.sources import read_source

        fmt = SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise TamisError(
                f"cannot tell the format of the {what} file",
                file=ref,
                fix=f"use one of: {', '.join(sorted(set(SUFFIXES)))}",
            )
        frame = read_source(path, fmt, {}, name=what, file=ref)
        return frame, {"path": str(path.resolve())}
    from tamis.errors import StoreError
    from tamis.pipelines.store import Store

    st = Store(store)
    try:
        version = st.resolve(ref)
    except StoreError:
        # refs such as `demo/parts.test` end in a file-like suffix: try the store first
        if path.suffix.lower() in SUFFIXES:
            raise missing_file(what, ref) from None
        raise
    manifest = st.manifest(ref)
    return st.read(ref), {"ref": ref, "version": version, "manifest": manifest}


def _ledger(prov: dict[str, Any]) -> Any:
    report = (prov.get("manifest") or {}).get("report") or {}
    return report.get("privacy_ledger")


def audit(
    real: Annotated[str, typer.Argument(help="real training data: store ref/id or file")],
    synthetic: Annotated[str, typer.Argument(help="synthetic data: store ref/id or file")],
    holdout: Annotated[
        str, typer.Option("--holdout", help="real rows the synthesizer never saw (ref or file)")
    ],
    policy: Annotated[Path, typer.Option("--policy", help="policy YAML of thresholds (required)")],
    html: Annotated[
        Path | None, typer.Option("--html", help="write the HTML report here (and .json beside)")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of subsamples and attacks")] = 0,
    store: store_option = DEFAULT_STORE,
    as_json: json_option = False,
) -> None:
    """Privacy audit of synthetic data with a release gate (exit 3 when a check fails)."""
    from tamis.pipelines.steps.privacy_audit import make_synthesize
    from tamis.privacy.audit.core import AuditConfig, run_audit
    from tamis.privacy.audit.gate import check_threshold_names, evaluate_gate, load_policy
    from tamis.privacy.audit.report import build_html, to_json, write_json
    from tamis.privacy.audit.validity import public_metadata

    pol = load_policy(policy)
    real_df, real_prov = resolve_frame(real, store, "real")
    # a threshold naming no figure is a typo in the policy: an error (exit 1), before any work
    check_threshold_names(pol, list(pol.audit.columns or real_df.columns), str(policy))
    syn_df, syn_prov = resolve_frame(synthetic, store, "synthetic")
    hold_df, hold_prov = resolve_frame(holdout, store, "holdout")
    # the shadow attack retrains what the policy names, else the documented default
    # (gaussian_copula), whatever made the synthetic data: a silent CTGAN retrain took minutes
    cfg = pol.audit
    if not cfg.public:
        # a DP version's public bounds/domains are what its values must respect
        cols = set(cfg.columns or real_df.columns)
        public = {c: m for c, m in public_metadata(syn_prov.get("manifest")).items() if c in cols}
        if public:
            cfg = cfg.model_copy(
                update={"public": AuditConfig.model_validate({"public": public}).public}
            )
    if cfg.marginal.enabled and cfg.marginal.marginals is None:
        # a dp_mst/dp_aim version: attack the marginals it says it measured
        from tamis.privacy.audit.marginal import released_marginals

        measured = released_marginals(
            syn_prov.get("manifest"), list(cfg.columns or real_df.columns)
        )
        if measured:
            cfg = cfg.model_copy(
                update={"marginal": cfg.marginal.model_copy(update={"marginals": measured})}
            )
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]audit[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def progress(msg: str, *a: Any, completed: int | None = None, **k: Any) -> None:
            bar.update(task, description=msg, completed=completed or 0, total=k.get("total"))

        result = run_audit(
            real_df,
            syn_df,
            hold_df,
            cfg,
            seed=seed,
            synthesize=make_synthesize(cfg.shadow.synthesizer, cfg.shadow.epochs),
            progress=progress,
        )
    gate = evaluate_gate(result.report["metrics"], pol)
    ledger = _ledger(syn_prov)
    payload = {
        "passed": gate["passed"],
        "gate": gate,
        "policy": str(policy),
        "inputs": {
            k: {kk: vv for kk, vv in v.items() if kk != "manifest"}
            for k, v in (("real", real_prov), ("synthetic", syn_prov), ("holdout", hold_prov))
        },
        "audit": result.report,
    }
    if ledger:
        payload["privacy_ledger"] = ledger
    payload = to_json(payload)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(build_html(result, gate, ledger))
        write_json(payload, html.with_suffix(".json"))
        payload["html"] = str(html)
    inputs = {"real": real_prov, "synthetic": syn_prov, "holdout": hold_prov}
    if any(p.get("version") for p in inputs.values()) or (store / "versions").is_dir():
        # the release decision leaves a trace in the store (see `tamis show VERSION`)
        from tamis.privacy.audit.records import record_audit

        payload["audit_record"] = str(
            record_audit(
                store,
                inputs=inputs,
                policy_path=policy,
                gate=gate,
                payload=payload,
                seed=seed,
                html=html,
            )
        )

    def render() -> None:
        from rich.table import Table

        t = Table(title=f"privacy gate ({policy}): {'PASSED' if gate['passed'] else 'FAILED'}")
        for c in ("check", "value", "threshold", "result"):
            t.add_column(c)
        for c in gate["checks"]:
            th = f">= {c['min']}" if c["min"] is not None else ""
            th += (" and " if th and c["max"] is not None else "") + (
                f"<= {c['max']}" if c["max"] is not None else ""
            )
            if c["bound"] != "point":
                th += f" ({c['bound']})"
            value = "not computed" if c["value"] is None else f"{c['value']:.4g}"
            res = "[green]pass[/]" if c["passed"] else "[red]FAIL[/]"
            t.add_row(c["check"], value, th, res)
        out.print(t)
        if html is not None:
            out.print(f"report: {html}  (+ {html.with_suffix('.json')})")
        if payload.get("audit_record"):
            out.print(f"recorded in the store: {payload['audit_record']}", highlight=False)

    emit(payload, as_json, render)
    if not gate["passed"]:
        failed = [{"name": c["check"], **c} for c in gate["failed"]]
        names = "; ".join(f"{c['check']} ({c.get('reason', '')})" for c in gate["failed"])
        if as_json:
            # the one JSON document is already on stdout; name the failures on stderr
            for c in gate["failed"]:
                err.print(f"failed: {c['check']}: {c.get('reason', '')}", highlight=False)
            raise typer.Exit(GateFailed.exit_code)
        raise GateFailed(f"privacy gate failed: {names}", failed=failed)


def _mapping(text: str | None, what: str) -> dict[str, Any]:
    """A YAML/JSON mapping given inline or as a file path (empty when not given)."""
    if not text:
        return {}
    path = Path(text)
    src = path.read_text() if path.suffix.lower() in (".yaml", ".yml", ".json") else text
    if path.suffix.lower() in (".yaml", ".yml", ".json") and not path.exists():
        raise missing_file(what, text)
    try:
        data = safe_load_yaml(src, file=str(path) if src is not text else f"--{what}")
    except TamisError as exc:
        raise TamisError(f"{what}: {exc.message}", field=what, fix=exc.fix) from None
    if not isinstance(data, dict):
        raise TamisError(
            f"{what} must be a mapping",
            field=what,
            fix=f"e.g. --{what} '{{\"epsilon\": 1.0}}' or --{what} FILE.yaml",
        )
    return data


def audit_canary(
    data: Annotated[str, typer.Argument(help="the training data: store ref/id or file")],
    synthesizer: Annotated[
        str,
        typer.Option(
            "--synthesizer",
            help="a synthesizer step type (dp_ctgan, dp_mst, dp_aim, gaussian_copula, ...) or "
            "`copy` (a non-private control that releases its training rows)",
        ),
    ],
    params: Annotated[
        str | None,
        typer.Option("--params", help="the step's params: inline YAML/JSON or a .yaml/.json file"),
    ] = None,
    trials: Annotated[int, typer.Option("--trials", help="fits with and without the canary")] = 100,
    canary: Annotated[
        str | None,
        typer.Option(
            "--canary", help="the canary row as a YAML/JSON mapping (default: an unusual record)"
        ),
    ] = None,
    score: Annotated[str, typer.Option("--score", help="distance, exact or marginal")] = "distance",
    delta: Annotated[float, typer.Option("--delta", help="the claim's delta")] = 1e-5,
    confidence: Annotated[float, typer.Option("--confidence", help="of the bound")] = 0.95,
    claimed_epsilon: Annotated[
        float | None,
        typer.Option("--claimed-epsilon", help="default: the params' epsilon"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the first fit")] = 0,
    store: store_option = DEFAULT_STORE,
    as_json: json_option = False,
) -> None:
    """Empirical epsilon: a lower bound from fits with and without a canary (exit 3 when it
    reaches the claimed epsilon: the DP claim is broken)."""
    import polars as pl

    from tamis.privacy.audit.canary import canary_audit

    frame, prov = resolve_frame(data, store, "data")
    if hasattr(frame, "collect"):
        frame = frame.collect()
    step_params = _mapping(params, "params")
    canary_row = _mapping(canary, "canary")
    claim = claimed_epsilon if claimed_epsilon is not None else step_params.get("epsilon")
    if synthesizer == "copy":

        def fit(df: pl.DataFrame, s: int) -> pl.DataFrame:
            return df

    else:
        from tamis.pipelines.registry import get_step_type
        from tamis.pipelines.runner import run_step

        get_step_type(synthesizer)  # an unknown name is a clear error before any fit

        def fit(df: pl.DataFrame, s: int) -> pl.DataFrame:
            frames = run_step(synthesizer, {"input": df}, step_params, seed=s).frames
            got = frames.get("data", next(iter(frames.values())))
            return got.collect() if isinstance(got, pl.LazyFrame) else got

    canary_df = None
    if canary_row:
        canary_df = pl.DataFrame([canary_row])
    result = canary_audit(
        fit,
        frame,
        canary_df,
        trials=trials,
        score=score,
        delta=delta,
        confidence=confidence,
        claimed_epsilon=float(claim) if claim is not None else None,
        seed=seed,
    )
    payload = {
        "data": {k: v for k, v in prov.items() if k != "manifest"},
        "synthesizer": synthesizer,
        "params": step_params,
        **result,
    }

    def render() -> None:
        out.print(
            f"empirical epsilon of {synthesizer}: >= {result['epsilon_lower_bound']:.3f} "
            f"at {result['confidence']:.0%} confidence (delta {result['delta']:g}; "
            f"{result['trials_per_world']} fits with and {result['trials_per_world']} without "
            f"the canary, {result['evaluation_trials']} each to evaluate; at most "
            f"{result['max_provable_epsilon']:.3f} provable with these trials)",
            highlight=False,
        )
        out.print(
            f"errors on the evaluation trials: {result['false_positives']} false positives, "
            f"{result['false_negatives']} false negatives (score {result['score']})",
            highlight=False,
        )
        if claim is not None:
            verdict = "below" if result["below_claim"] else "NOT below"
            out.print(f"claimed epsilon {claim}: the bound is {verdict} it", highlight=False)

    emit(payload, as_json, render)
    if claim is not None and not result["below_claim"]:
        if as_json:  # the one JSON document is already on stdout
            err.print("failed: epsilon_lower_bound reaches the claimed epsilon", highlight=False)
            raise typer.Exit(GateFailed.exit_code)
        raise GateFailed(
            f"the empirical lower bound {result['epsilon_lower_bound']:.3f} reaches the claimed "
            f"epsilon {claim}: the synthesizer does not keep its DP claim",
            failed=[{"name": "epsilon_lower_bound", "value": result["epsilon_lower_bound"]}],
            fix="check the mechanism's accounting; a non-private synthesizer gives this result",
        )


def register(app: typer.Typer) -> None:
    app.command(name="audit")(cli_errors(audit))
    app.command(name="audit-canary")(cli_errors(audit_canary))
