"""Step `inject_label_noise`: corrupt labels on purpose for ablations (see tamis.curate.noise)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class InjectLabelNoiseParams(StepParams):
    label: str = Field(description="the label column")
    rate: float = Field(
        default=0.2, ge=0.0, lt=1.0, description="fraction flipped (uniform) / per-class flip rate"
    )
    kind: Literal["uniform", "class_conditional"] = Field(
        default="uniform", description="uniform flips, or draws from a transition matrix"
    )
    transition: dict[str, dict[str, float]] | list[list[float]] | None = Field(
        default=None,
        description="class_conditional: {true: {noisy: p}} or a k x k matrix (sorted classes);"
        " random (Dirichlet) from `rate` when omitted",
    )
    id_column: str | None = Field(
        default=None, description="copied into the noise table to match rows after later steps"
    )
    truth_column: str | None = Field(
        default=None,
        description="add a boolean column of this name marking the flipped rows (e.g."
        " is_injected_noise): label_issues then reports detection precision/recall",
    )


class InjectLabelNoise(Step):
    """Flip a fraction of the labels (uniform or class-conditional); the truth goes to the report.

    The `noise` report table lists row, true_label and noisy_label of each flipped row.
    """

    name = "inject_label_noise"
    Params = InjectLabelNoiseParams
    version = 2  # truth_column (issue 12)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.noise import inject_label_noise

        p: InjectLabelNoiseParams = params
        out, report = inject_label_noise(
            inputs["input"].collect(),
            label=p.label,
            rate=p.rate,
            kind=p.kind,
            transition=p.transition,
            id_column=p.id_column,
            truth_column=p.truth_column,
            seed=ctx.seed,
        )
        tables = report.pop("tables")
        return StepOutput(frames={"data": out}, report=report, tables=tables)
