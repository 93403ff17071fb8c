"""Preference data for reward models, DPO and PPO: pairs from feedback, curation, TRL formats.

    from tamis.curate.preferences import pairs_from_transcripts, curate_pairs, to_sft, tone_pairs
    res = pairs_from_transcripts(df)            # PairResult(pairs, report, dropped, adjudicate)
    clean = curate_pairs(res.pairs, rebalance_length=True)
    sft = to_sft(clean.pairs)                   # prompt, completion

Builders: `pairs_from_transcripts` (HH-RLHF), `pairs_from_ratings` (UltraFeedback style),
`pairs_from_rankings`, `pairs_from_votes`; `tone_pairs` generates a synthetic tone-control set.
Outputs are what TRL's DPOTrainer and RewardTrainer read: `prompt`, `chosen`, `rejected`, as text
(`format="standard"`) or {role, content} message lists (`format="conversational"`).
"""

from tamis.curate.preferences.common import PairResult, to_prompts, to_sft
from tamis.curate.preferences.curate import curate_pairs, rebalance_by_length, split_by_prompt
from tamis.curate.preferences.scored import pairs_from_rankings, pairs_from_ratings
from tamis.curate.preferences.stats import length_bias
from tamis.curate.preferences.tone import tone_pairs
from tamis.curate.preferences.transcripts import (
    pairs_from_transcripts,
    parse_transcript,
    split_pair,
)
from tamis.curate.preferences.votes import pairs_from_votes

__all__ = [
    "PairResult",
    "curate_pairs",
    "length_bias",
    "pairs_from_rankings",
    "pairs_from_ratings",
    "pairs_from_transcripts",
    "pairs_from_votes",
    "parse_transcript",
    "rebalance_by_length",
    "split_by_prompt",
    "split_pair",
    "to_prompts",
    "to_sft",
    "tone_pairs",
]
