"""Preference data for reward models, DPO and PPO: pairs from feedback, curation, TRL formats.

    from tamis.curate.preferences import pairs_from_transcripts, curate_pairs, to_sft, tone_pairs
    res = pairs_from_transcripts(df)            # PairResult(pairs, report, dropped, adjudicate)
    clean = curate_pairs(res.pairs, rebalance_length=True)
    sft = to_sft(clean.pairs)                   # prompt, completion

Each capability takes its config whole (`PreferencePairsConfig`, `PreferenceCurateConfig`,
`PromptSplitConfig`, `TonePairsConfig`: the pipeline steps' params), or its fields as keywords.
Builders: `preference_pairs` (any kind, as the config's `from` says), `pairs_from_transcripts`
(HH-RLHF), `pairs_from_ratings` (UltraFeedback style), `pairs_from_rankings`, `pairs_from_votes`;
`tone_pairs` generates a synthetic tone-control set.
Outputs are what TRL's DPOTrainer and RewardTrainer read: `prompt`, `chosen`, `rejected`, as text
(`format="standard"`) or {role, content} message lists (`format="conversational"`).
"""

from tamis.curate.preferences.common import PairResult, to_prompts, to_sft
from tamis.curate.preferences.config import PreferencePairsConfig, pairs_config
from tamis.curate.preferences.curate import (
    PreferenceCurateConfig,
    curate_pairs,
    rebalance_by_length,
)
from tamis.curate.preferences.pairs import preference_pairs
from tamis.curate.preferences.rankings import pairs_from_rankings
from tamis.curate.preferences.ratings import pairs_from_ratings
from tamis.curate.preferences.split import PromptSplitConfig, split_by_prompt
from tamis.curate.preferences.stats import length_bias
from tamis.curate.preferences.tone import TonePairsConfig, tone_pairs, tone_report
from tamis.curate.preferences.transcripts import (
    pairs_from_transcripts,
    parse_transcript,
    split_pair,
)
from tamis.curate.preferences.votes import pairs_from_votes

__all__ = [
    "PairResult",
    "PreferenceCurateConfig",
    "PreferencePairsConfig",
    "PromptSplitConfig",
    "TonePairsConfig",
    "curate_pairs",
    "length_bias",
    "pairs_from_rankings",
    "pairs_from_ratings",
    "pairs_from_transcripts",
    "pairs_config",
    "pairs_from_votes",
    "parse_transcript",
    "preference_pairs",
    "rebalance_by_length",
    "split_by_prompt",
    "split_pair",
    "to_prompts",
    "to_sft",
    "tone_pairs",
    "tone_report",
]
