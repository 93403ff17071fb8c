"""`tone_pairs`: a synthetic preference set for tone control (concise + friendly beats verbose + formal).

Every row is generated from templates and a seed; nothing here is real feedback, and every row carries
`synthetic = True`. The chosen reply answers the question in one friendly sentence or two; the
rejected reply gives the same answer wrapped in formal, verbose boilerplate. The answers themselves
are correct in both (they come from the same fact), so the only signal is tone (and, by default,
length: see `length_matched`).

    from tamis.curate.preferences import tone_pairs
    df = tone_pairs(200, noise=0.1, seed=0)    # prompt, chosen, rejected, synthetic, label_flipped, topic
    df = tone_pairs(TonePairsConfig(n=200, noise=0.1), seed=0)      # the same
"""

from __future__ import annotations

import random
from typing import Any, Literal

import polars as pl
from pydantic import Field

from tamis.config import Config, load_config


class TonePairsConfig(Config):
    """How many synthetic tone-control pairs, how noisy, and in which format."""

    n: int = Field(1000, ge=1, description="number of pairs")
    noise: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of pairs whose chosen/rejected are swapped"
    )
    length_matched: bool = Field(
        False,
        description="pad replies with same-tone filler so length no longer predicts the label",
    )
    format: Literal["standard", "conversational"] = Field(
        "standard", description="text columns (HH style) or {role, content} message lists"
    )


Fact = tuple[str, str, str]  # (topic, question, one-sentence answer)

_CAPITALS = [
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"),
    ("Egypt", "Cairo"), ("Chile", "Santiago"), ("Greece", "Athens"), ("Portugal", "Lisbon"),
    ("Vietnam", "Hanoi"), ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Austria", "Vienna"),
    ("Cuba", "Havana"), ("Thailand", "Bangkok"), ("Sweden", "Stockholm"), ("Ghana", "Accra"),
]  # fmt: skip
_COLORS = [
    ("a ripe banana", "yellow"), ("the clear daytime sky", "blue"), ("fresh grass", "green"),
    ("a ripe tomato", "red"), ("coal", "black"), ("fresh snow", "white"), ("a carrot", "orange"),
    ("an eggplant", "purple"), ("a lemon", "yellow"), ("a flamingo", "pink"),
]  # fmt: skip
_HOWTO = [
    ("boil an egg", "put the egg in boiling water for about nine minutes, then cool it in cold water"),
    ("make tea", "pour hot water over a tea bag and let it steep for three to five minutes"),
    ("water a cactus", "soak the soil about once every two weeks and let it dry out fully in between"),
    ("keep bread fresh", "store it in a paper bag at room temperature, or freeze slices you will not eat soon"),
    ("clean a keyboard", "unplug it, shake out the crumbs and wipe the keys with a slightly damp cloth"),
    ("fall asleep faster", "keep a regular bedtime, dim the lights and put your phone away an hour before"),
    ("remember names", "repeat the name back when you hear it and link it to something about the person"),
    ("cook rice", "simmer one cup of rice in two cups of water with the lid on for about eighteen minutes"),
    ("save money on groceries", "plan meals for the week, shop with a list and buy staples in bulk"),
    ("learn to juggle", "start with one ball, then two, and practise the throw pattern slowly every day"),
    ("stop a squeaky door", "put a few drops of oil or a little petroleum jelly on the hinge pins"),
    ("grow basil", "give it a sunny window, water it when the soil feels dry and pinch off the flowers"),
]  # fmt: skip
_WORDS = [
    ("hello", "hola", "Spanish"), ("thank you", "merci", "French"), ("cat", "Katze", "German"),
    ("water", "acqua", "Italian"), ("good night", "boa noite", "Portuguese"),
    ("friend", "amigo", "Spanish"), ("book", "livre", "French"), ("house", "Haus", "German"),
    ("sun", "sole", "Italian"), ("bread", "pao", "Portuguese"),
]  # fmt: skip
_UNITS = [
    ("kilometres", "metres", 1000), ("hours", "minutes", 60), ("minutes", "seconds", 60),
    ("metres", "centimetres", 100), ("kilograms", "grams", 1000), ("days", "hours", 24),
]  # fmt: skip

_ASK = [
    "{q}", "Quick question: {q}", "Can you tell me this: {q}", "Hey, {q_lower}",
    "I was wondering, {q_lower}", "Please answer: {q}", "{q} Thanks in advance.",
]  # fmt: skip
_FRIENDLY_OPEN = [
    "Sure!", "Happy to help!", "Great question!", "Of course!", "Hi there!", "Good one!",
    "Absolutely!", "Oh, easy one!", "Glad you asked!",
]  # fmt: skip
_FRIENDLY_CLOSE = [
    "Hope that helps!", "Have a great day!", "Enjoy!", "Cheers!", "Let me know if you need more!",
    "Good luck!", "", "", "Have fun with it!",
]  # fmt: skip
_FRIENDLY_FILL = [
    "It is honestly a fun thing to know.", "You have got this!", "Feel free to ask me anything else.",
    "Thanks for the nice question!", "I love questions like this one.", "Happy learning!",
]  # fmt: skip
_FORMAL_OPEN = [
    "Thank you for your inquiry.", "I acknowledge receipt of your question.",
    "Your request has been duly noted.", "I appreciate the opportunity to address this matter.",
    "With reference to your recent query, please find my response below.",
]  # fmt: skip
_FORMAL_PRE = [
    "Upon careful consideration of the matter you have raised, I am in a position to state the following:",
    "Having reviewed the relevant considerations in their entirety, it is my duty to inform you that",
    "In accordance with the information currently available to me, it may be stated that",
    "Pursuant to your request, and after due deliberation, I wish to advise that",
]  # fmt: skip
_FORMAL_ELAB = [
    "It should be noted that this information is provided for general reference purposes only.",
    "Furthermore, it is advisable to verify this information against authoritative sources.",
    "Moreover, individual circumstances may necessitate additional considerations in this regard.",
    "Accordingly, the foregoing ought to be interpreted within the appropriate context.",
    "Notwithstanding the above, further clarification may be obtained upon formal request.",
]  # fmt: skip
_FORMAL_CLOSE = [
    "Should you require any further assistance, please do not hesitate to contact me.",
    "I remain at your disposal for any additional inquiries. Yours faithfully.",
    "Kindly let me know whether any further elaboration is required. Respectfully submitted.",
    "I trust that this response satisfactorily addresses your inquiry. Sincerely.",
]  # fmt: skip


def _fact(rng: random.Random) -> Fact:
    kind = rng.randrange(6)
    if kind == 0:
        country, city = rng.choice(_CAPITALS)
        return (
            "geography",
            f"What is the capital of {country}?",
            f"The capital of {country} is {city}.",
        )
    if kind == 1:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op = rng.choice(["plus", "times", "minus"])
        value = a + b if op == "plus" else a * b if op == "times" else a - b
        return "arithmetic", f"What is {a} {op} {b}?", f"{a} {op} {b} is {value}."
    if kind == 2:
        thing, color = rng.choice(_COLORS)
        return "colors", f"What color is {thing}?", f"{thing[0].upper() + thing[1:]} is {color}."
    if kind == 3:
        task, how = rng.choice(_HOWTO)
        return "howto", f"How do I {task}?", f"To {task}, {how}."
    if kind == 4:
        word, trans, lang = rng.choice(_WORDS)
        return (
            "translation",
            f'How do you say "{word}" in {lang}?',
            f'In {lang}, "{word}" is "{trans}".',
        )
    big, small, factor = rng.choice(_UNITS)
    k = rng.randint(2, 12)
    return (
        "units",
        f"How many {small} are in {k} {big}?",
        f"There are {k * factor} {small} in {k} {big}.",
    )


def _friendly(rng: random.Random, answer: str) -> list[str]:
    parts = [rng.choice(_FRIENDLY_OPEN), answer, rng.choice(_FRIENDLY_CLOSE)]
    return [p for p in parts if p]


def _formal(rng: random.Random, answer: str) -> list[str]:
    core = answer[0].lower() + answer[1:]
    n_elab = rng.randint(1, 3)
    return [
        rng.choice(_FORMAL_OPEN),
        f"{rng.choice(_FORMAL_PRE)} {core}",
        *rng.sample(_FORMAL_ELAB, n_elab),
        rng.choice(_FORMAL_CLOSE),
    ]


def _pad(rng: random.Random, parts: list[str], pool: list[str], target: int) -> list[str]:
    """Insert filler sentences of the same tone (before the closing) until the text reaches target."""
    out = list(parts)
    while len(" ".join(out)) < target:
        out.insert(len(out) - 1, rng.choice(pool))
    return out


def tone_pairs(config: TonePairsConfig | int, *, seed: int = 0, **params: Any) -> pl.DataFrame:
    """Synthetic tone-control pairs: concise friendly reply (chosen) vs verbose formal (rejected).

    `config` is a `TonePairsConfig`, or the number of pairs `n` with the other fields as `params`:
    `noise` flips chosen/rejected in that share of pairs (`label_flipped` says which ones; useful
    to test noise detection); `length_matched` pads the friendly reply with friendly filler (and,
    in half of the pairs, the formal one with formal filler) so that length no longer predicts the
    label: a control for the length-bias shortcut; `format` "standard" (text columns; the prompt
    ends with "\\n\\nAssistant:" and replies start with a space, HH-RLHF style) or
    "conversational" (lists of {role, content} messages). All randomness comes from `seed`: the
    same arguments give the same frame.

    Columns: prompt, chosen, rejected, synthetic (always True), label_flipped, topic.
    """
    if not isinstance(config, TonePairsConfig):
        config = load_config(TonePairsConfig, {"n": config, **params}, prefix="tone_pairs")
    noise, length_matched = config.noise, config.length_matched
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for _ in range(config.n):
        topic, question, answer = _fact(rng)
        ask = rng.choice(_ASK).format(q=question, q_lower=question[0].lower() + question[1:])
        friendly, formal = _friendly(rng, answer), _formal(rng, answer)
        if length_matched:
            friendly = _pad(rng, friendly, _FRIENDLY_FILL, len(" ".join(formal)))
            if rng.random() < 0.5:
                formal = _pad(rng, formal, _FORMAL_ELAB, len(" ".join(friendly)) + 1)
        chosen, rejected = " ".join(friendly), " ".join(formal)
        flipped = rng.random() < noise
        if flipped:
            chosen, rejected = rejected, chosen
        rows.append(
            {
                "prompt": ask,
                "chosen": chosen,
                "rejected": rejected,
                "synthetic": True,
                "label_flipped": flipped,
                "topic": topic,
            }
        )
    return _in_format(pl.DataFrame(rows), config.format)


def _in_format(df: pl.DataFrame, format: str) -> pl.DataFrame:
    if format == "standard":
        return df.with_columns(
            ("\n\nHuman: " + pl.col("prompt") + "\n\nAssistant:").alias("prompt"),
            (" " + pl.col("chosen")).alias("chosen"),
            (" " + pl.col("rejected")).alias("rejected"),
        )
    return df.with_columns(
        pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("prompt"))).alias("prompt"),
        *(
            pl.concat_list(pl.struct(role=pl.lit("assistant"), content=pl.col(c))).alias(c)
            for c in ("chosen", "rejected")
        ),
    )


def tone_report(df: pl.DataFrame, config: TonePairsConfig) -> dict[str, Any]:
    """The report of a `tone_pairs` frame: it says `synthetic: true`, flips, topics, length bias."""
    from tamis.curate.preferences.stats import length_bias

    return {
        "synthetic": True,
        "rows_out": df.height,
        "pairs_out": df.height,
        "label_flipped": int(df.get_column("label_flipped").sum()),
        "noise": config.noise,
        "length_matched": config.length_matched,
        "topics": dict(sorted(df.get_column("topic").value_counts().iter_rows())),
        "length_bias": length_bias(df),
        "note": "synthetic data generated from templates; not real human feedback",
    }
