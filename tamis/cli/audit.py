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
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from tamis.pipelines.release import audit_release

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

        run = audit_release(
            real, synthetic, holdout, policy, store=store, seed=seed, html=html, progress=progress
        )
    payload, gate = run.payload, run.gate

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
    from tamis.pipelines.release import canary_audit_run

    step_params = _mapping(params, "params")
    canary_row = _mapping(canary, "canary")
    claim = claimed_epsilon if claimed_epsilon is not None else step_params.get("epsilon")
    result = canary_audit_run(
        data,
        synthesizer,
        step_params,
        store=store,
        canary=canary_row or None,
        trials=trials,
        score=score,
        delta=delta,
        confidence=confidence,
        claimed_epsilon=float(claim) if claim is not None else None,
        seed=seed,
    )
    payload = result

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
