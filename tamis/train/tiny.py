"""`--model tiny`: a small Llama-style model built from a config, with a locally trained tokenizer.

Nothing is downloaded: the byte-level BPE tokenizer is trained on the texts you pass (the training
data), and the model weights are initialised from a seed. Tests, the demo and quick experiments run
offline on a CPU in seconds.

    from tamis.train.tiny import TinyConfig, train_tokenizer, tiny_causal_lm, tiny_reward_model

    tok = train_tokenizer(texts)                       # pad, eos, bos set; chat template set
    policy = tiny_causal_lm(tok, TinyConfig(), seed=0)  # LlamaForCausalLM
    rm = tiny_reward_model(tok, TinyConfig(), seed=0)   # LlamaForSequenceClassification, num_labels=1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tamis.config import Config

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|startoftext|>"
UNK_TOKEN = "<|unk|>"

# A minimal chat template so `messages` data works with the tiny model (SFT on conversations).
# The `{% generation %}` markers let TRL compute an assistant-only loss.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] + '"
    + EOS_TOKEN
    + "' }}{% endgeneration %}"
    "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


class TinyConfig(Config):
    """Size of the tiny Llama-style model. Defaults give ~0.2M parameters: trains in seconds."""

    vocab_size: int = Field(
        default=512, description="BPE vocabulary size of the locally trained tokenizer."
    )
    hidden_size: int = Field(default=64, description="Width of the transformer.")
    intermediate_size: int = Field(default=128, description="Width of the MLP blocks.")
    num_hidden_layers: int = Field(default=2, description="Number of decoder layers.")
    num_attention_heads: int = Field(default=4, description="Attention heads per layer.")
    max_position_embeddings: int = Field(
        default=512, description="Longest sequence (prompt + response) in tokens."
    )
    min_frequency: int = Field(
        default=2, description="A BPE merge needs a pair seen at least this often."
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


#: the TinyConfig fields that are LlamaConfig's own, by the same name
ARCHITECTURE = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 512, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`; pad, eos, bos and a chat template are set.

    Byte-level means every string can be encoded (no unknown characters), whatever it contains.
    Training is deterministic for the same texts in the same order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for t in texts if isinstance(t, str) and t]
    if not texts:
        from tamis.errors import TamisError

        raise TamisError(
            "cannot train the tiny tokenizer: no non-empty training texts",
            fix="pass data with text in its prompt/completion/chosen/rejected columns",
        )
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = [PAD_TOKEN, EOS_TOKEN, BOS_TOKEN, "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        bos_token=BOS_TOKEN,
        model_max_length=512,
        padding_side="right",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _llama_config(tokenizer: PreTrainedTokenizerFast, config: TinyConfig, **extra: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        **{name: getattr(config, name) for name in ARCHITECTURE},
        num_key_value_heads=config.num_attention_heads,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
        attention_dropout=0.0,
        **extra,
    )


def tiny_causal_lm(
    tokenizer: PreTrainedTokenizerFast, config: TinyConfig | None = None, seed: int = 0
) -> PreTrainedModel:
    """A small `LlamaForCausalLM` whose vocabulary matches `tokenizer`, initialised from `seed`."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer, config or TinyConfig()))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def tiny_reward_model(
    tokenizer: PreTrainedTokenizerFast, config: TinyConfig | None = None, seed: int = 0
) -> PreTrainedModel:
    """The sequence-classification twin (`num_labels=1`): a scalar reward read at the last token."""
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(
        _llama_config(tokenizer, config or TinyConfig(), num_labels=1)
    )


def build_tiny(
    texts: Iterable[str], kind: str = "causal", config: TinyConfig | None = None, seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Tokenizer trained on `texts` plus a fresh tiny model: `kind` is "causal" or "reward"."""
    config = config or TinyConfig()
    tok = train_tokenizer(texts, config.vocab_size, config.min_frequency)
    if kind == "reward":
        return tiny_reward_model(tok, config, seed), tok
    return tiny_causal_lm(tok, config, seed), tok
