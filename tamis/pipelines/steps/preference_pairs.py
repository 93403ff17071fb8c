"""Step `preference_pairs`: raw feedback -> preference pairs for reward models, DPO and PPO.

`from:` transcripts (HH-RLHF), ratings (UltraFeedback style), rankings or votes. Outputs: `data`
(prompt, chosen, rejected: what TRL's DPOTrainer and RewardTrainer read), `sft` (prompt,
completion from chosen), `prompts` (prompt only, for RL), `dropped` (every dropped row/pair/prompt
with its reason) and, with `from: votes` and `below: adjudicate`, `adjudicate`.
See tamis/curate/preferences and docs/preferences.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, create_model, model_validator

from tamis.errors import StepError
from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams

KINDS = ("transcripts", "ratings", "rankings", "votes")
#: the column roles each kind reads, with their default column names
ROLES: dict[str, dict[str, str]] = {
    "transcripts": {"chosen": "chosen", "rejected": "rejected"},
    "ratings": {
        "prompt": "prompt",
        "response": "response",
        "score": "score",
        "annotator": "annotator",
    },
    "rankings": {
        "prompt": "prompt",
        "responses": "responses",
        "response": "response",
        "rank": "rank",
    },
    "votes": {"prompt": "prompt", "a": "a", "b": "b", "winner": "winner", "annotator": "annotator"},
}
#: params that only mean something for some kinds
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "strategy": ("ratings", "rankings"),
    "margin": ("ratings", "rankings"),
    "aggregate": ("ratings",),
    "ties": ("ratings", "rankings", "votes"),
    "min_agreement": ("votes",),
    "min_votes": ("votes",),
    "below": ("votes",),
    "human_marker": ("transcripts",),
    "assistant_marker": ("transcripts",),
}


class _PairsParamsBase(StepParams):
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="role -> input column, where the names differ from the defaults. Roles: "
        "transcripts: chosen, rejected; ratings: prompt, response, score, annotator; rankings: "
        "prompt, responses (a list, best first) or response + rank (1 = best); votes: prompt, a, "
        "b, winner, annotator",
    )
    format: Literal["standard", "conversational"] = Field(
        "standard",
        description="standard: prompt/chosen/rejected are text; conversational: lists of "
        "{role, content} messages",
    )
    keep_both: bool = Field(
        True,
        description="also keep the other form (`*_messages` beside text, `*_text` beside messages)",
    )
    strategy: Literal["best_worst", "best_random", "all_pairs"] = Field(
        "best_worst", description="ratings/rankings: which responses of a prompt are paired"
    )
    margin: float = Field(
        0.0, ge=0.0, description="ratings/rankings: smallest score (or rank) gap kept in a pair"
    )
    ties: Literal["drop", "keep"] = Field(
        "drop", description="equal scores / tie votes: drop, or keep with `tie = true`"
    )
    aggregate: Literal["mean", "median", "majority"] = Field(
        "mean", description="ratings: how several ratings of one response are combined"
    )
    min_agreement: float = Field(
        0.5, ge=0.0, le=1.0, description="votes: smallest share of votes for the majority label"
    )
    min_votes: int = Field(1, ge=1, description="votes: fewest votes a pair needs")
    below: Literal["drop", "adjudicate"] = Field(
        "drop",
        description="votes: pairs below min_agreement (or with no majority) are dropped or also "
        "written to the `adjudicate` output",
    )
    human_marker: str = Field("\n\nHuman:", description="transcripts: the user-turn marker")
    assistant_marker: str = Field(
        "\n\nAssistant:", description="transcripts: the assistant-turn marker"
    )

    @model_validator(mode="after")
    def _applies(self) -> _PairsParamsBase:
        kind = str(getattr(self, "from", ""))
        for name in self.model_fields_set:
            kinds = ONLY_FOR.get(name)
            if kinds and kind not in kinds:
                raise ValueError(f"param '{name}' does not apply to from: {kind} (only {kinds})")
        bad = [r for r in self.columns if kind in ROLES and r not in ROLES[kind]]
        if bad:
            raise ValueError(
                f"unknown column role '{bad[0]}' for from: {kind}; roles: {', '.join(ROLES[kind])}"
            )
        return self


PreferencePairsParams = create_model(
    "PreferencePairsParams",
    __base__=_PairsParamsBase,
    **{  # `from` is a Python keyword: the field is made here and read with getattr
        "from": (
            Literal["transcripts", "ratings", "rankings", "votes"],
            Field(description="the kind of feedback: transcripts, ratings, rankings or votes"),
        )
    },  # type: ignore[call-overload]
)


def _annotator_col(
    cols: dict[str, str], named: dict[str, str], columns: list[str], step: str
) -> str | None:
    """The annotator column when the data has it; an error when the user named one it lacks."""
    annotator = cols["annotator"] if cols["annotator"] in columns else None
    if "annotator" in named and annotator is None:
        raise StepError(
            f"no annotator column '{cols['annotator']}'",
            column=cols["annotator"],
            step=step,
            fix=f"columns: {', '.join(columns)}",
        )
    return annotator


class PreferencePairs(Step):
    """Build preference pairs (prompt, chosen, rejected) from transcripts, ratings, rankings or votes.

    Outputs data (pairs), sft (prompt, completion), prompts (for RL), dropped (with reasons) and,
    for votes with `below: adjudicate`, adjudicate.
    """

    name = "preference_pairs"
    Params = PreferencePairsParams
    version = 1
    outputs = ("data", "sft", "prompts", "dropped")

    def output_names(self, params: Any) -> tuple[str, ...]:
        if getattr(params, "from", None) == "votes" and params.below == "adjudicate":
            return (*self.outputs, "adjudicate")
        return self.outputs

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate import preferences as prefs

        p = params
        kind: str = getattr(p, "from")
        df = inputs["input"].collect()
        cols = {**ROLES[kind], **p.columns}
        ctx.progress(f"preference pairs from {kind}")
        if kind == "transcripts":
            res = prefs.pairs_from_transcripts(
                df, chosen_col=cols["chosen"], rejected_col=cols["rejected"],
                human_marker=p.human_marker, assistant_marker=p.assistant_marker,
                format=p.format, keep_both=p.keep_both, progress=ctx.progress,
            )  # fmt: skip
        elif kind == "ratings":
            annotator = _annotator_col(cols, p.columns, df.columns, ctx.step)
            res = prefs.pairs_from_ratings(
                df, prompt_col=cols["prompt"], response_col=cols["response"],
                score_col=cols["score"], annotator_col=annotator, strategy=p.strategy,
                margin=p.margin, ties=p.ties, aggregate=p.aggregate, format=p.format,
                keep_both=p.keep_both, seed=ctx.seed,
            )  # fmt: skip
        elif kind == "rankings":
            long_form = "rank" in p.columns or (
                cols["responses"] not in df.columns and cols["rank"] in df.columns
            )
            res = prefs.pairs_from_rankings(
                df, prompt_col=cols["prompt"], responses_col=cols["responses"],
                response_col=cols["response"], rank_col=cols["rank"] if long_form else None,
                strategy=p.strategy, margin=p.margin, ties=p.ties, format=p.format,
                keep_both=p.keep_both, seed=ctx.seed,
            )  # fmt: skip
        else:
            annotator = _annotator_col(cols, p.columns, df.columns, ctx.step)
            res = prefs.pairs_from_votes(
                df, prompt_col=cols["prompt"], a_col=cols["a"], b_col=cols["b"],
                winner_col=cols["winner"], annotator_col=annotator,
                min_agreement=p.min_agreement, min_votes=p.min_votes, below=p.below,
                ties=p.ties, format=p.format, keep_both=p.keep_both, seed=ctx.seed,
            )  # fmt: skip
        frames: dict[str, Any] = {
            "data": res.pairs,
            "sft": prefs.to_sft(res.pairs),
            "prompts": prefs.to_prompts(res.pairs),
            "dropped": res.dropped,
        }
        if "adjudicate" in self.output_names(p):
            assert res.adjudicate is not None
            frames["adjudicate"] = res.adjudicate
        from tamis.curate.preferences.html import write_html

        write_html(res.report, ctx.artifacts_dir / "preferences.html", res.pairs)
        return StepOutput(frames=frames, report=res.report)
