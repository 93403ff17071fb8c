"""The tiny model: offline tokenizer with pad/eos, causal LM and its reward twin, seeded init."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tamis.errors import TamisError  # noqa: E402
from tamis.train.tiny import (  # noqa: E402
    TinyConfig,
    build_tiny,
    tiny_causal_lm,
    tiny_reward_model,
    train_tokenizer,
)

TEXTS = ["Sure! Just click the button.", "Dear customer, we hereby inform you."] * 20


def test_tokenizer_has_pad_eos_and_roundtrips() -> None:
    tok = train_tokenizer(TEXTS, vocab_size=300)
    assert tok.pad_token is not None and tok.eos_token is not None
    assert tok.pad_token_id != tok.eos_token_id
    text = "Ünïcode and emoji 🙂 never seen before"
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: nothing is unknown
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], tokenize=False
    )
    assert chat.endswith("yo" + tok.eos_token)


def test_models_share_vocab_and_init_is_seeded() -> None:
    tok = train_tokenizer(TEXTS, vocab_size=300)
    lm, lm2 = tiny_causal_lm(tok, seed=3), tiny_causal_lm(tok, seed=3)
    rm = tiny_reward_model(tok, TinyConfig(), seed=3)
    ids = tok(["Sure! Just click."], return_tensors="pt")
    logits = lm(**ids).logits
    assert logits.shape[-1] == len(tok)
    assert torch.equal(logits, lm2(**ids).logits)
    assert rm(**ids).logits.shape == (1, 1)
    assert rm.config.num_labels == 1 and rm.config.pad_token_id == tok.pad_token_id
    model, tok2 = build_tiny(TEXTS, kind="reward")
    assert model.config.num_labels == 1 and len(tok2) == model.config.vocab_size


def test_no_texts_is_a_clear_error() -> None:
    with pytest.raises(TamisError, match="no non-empty training texts"):
        train_tokenizer(["", None])  # type: ignore[list-item]
