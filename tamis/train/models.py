"""Loading models and tokenizers (a hub id, a local path or `tiny`) with checks before training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tamis.errors import TamisError
from tamis.train.runs import RunConfig
from tamis.train.tiny import TinyConfig, tiny_causal_lm, tiny_reward_model, train_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or Path(ref).suffix != "" or ref.count("/") > 1


def tiny_config(cfg: RunConfig) -> TinyConfig:
    return TinyConfig(
        vocab_size=cfg.tiny_vocab_size,
        hidden_size=cfg.tiny_hidden_size,
        num_hidden_layers=cfg.tiny_layers,
        max_position_embeddings=max(512, (cfg.max_length or 256) * 2),
    )


def check_tokenizer(tok: PreTrainedTokenizerBase, model: str, pad_token: str | None) -> None:
    """A tokenizer must have an EOS token and a pad token (set `pad_token` to give it one)."""
    if tok.eos_token is None:
        raise TamisError(
            f"the tokenizer of '{model}' has no EOS token: responses could not end",
            field="model",
            fix="use a tokenizer with an eos_token (save one with tokenizer.eos_token set)",
        )
    if pad_token is not None:
        tok.pad_token = pad_token
    if tok.pad_token is None:
        raise TamisError(
            f"the tokenizer of '{model}' has no pad token: batches cannot be padded",
            field="pad_token",
            fix=f"set pad_token in the config (e.g. pad_token: '{tok.eos_token}')",
        )


def load_tokenizer(model: str, pad_token: str | None = None) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    _check_exists(model)
    try:
        tok = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise _load_error(f"cannot load a tokenizer from '{model}'", exc) from exc
    check_tokenizer(tok, model, pad_token)
    return tok


def _load_error(what: str, exc: Exception) -> TamisError:
    return TamisError(
        f"{what}: {exc}",
        field="model",
        fix="pass a local model directory, a reachable hub id, or --model tiny",
    )


def _check_exists(model: str) -> None:
    if _looks_like_path(model) and not Path(model).expanduser().exists():
        raise TamisError(
            "model path does not exist",
            file=model,
            field="model",
            fix="pass an existing model directory, a hub id (org/name), or --model tiny",
        )


#: Weight files that are Python pickles (loading one can run code written into the file).
PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_safetensors(model: str) -> None:
    """A local model directory must hold safetensors weights: pickled ones are refused."""
    path = Path(model).expanduser()
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLED_WEIGHTS)
    if pickles:
        raise TamisError(
            f"the model directory holds only pickled weights ({', '.join(pickles)}); tamis loads "
            "safetensors only, because unpickling a file can run code written into it",
            file=str(path),
            field="model",
            fix="where you trust the file, load it once and save it as safetensors, e.g. "
            "`AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(NEW_DIR)` (writes "
            "model.safetensors; copy the tokenizer too), then pass NEW_DIR",
            details={"pickled": pickles},
        )


def get_tokenizer(
    model: str, cfg: RunConfig, texts: list[str] | None = None
) -> PreTrainedTokenizerBase:
    """The tokenizer of `model` (for `tiny`, one trained on `texts`), checked; a local model
    directory with only pickled weights is refused first."""
    if model == "tiny":
        tok = train_tokenizer(texts or [], cfg.tiny_vocab_size)
        check_tokenizer(tok, model, cfg.pad_token)
        return tok
    _check_exists(model)
    check_safetensors(model)
    return load_tokenizer(model, cfg.pad_token)


def load_model(
    model: str,
    kind: str,
    cfg: RunConfig,
    texts: list[str] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) for `kind` "causal" or "reward" (sequence classification, 1 label).

    `tiny` builds a fresh model; its tokenizer is `tokenizer` when given (to share a vocabulary
    with another model) or one trained on `texts`.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if model == "tiny":
        tok = tokenizer or train_tokenizer(texts or [], cfg.tiny_vocab_size)
        check_tokenizer(tok, model, cfg.pad_token)
        build = tiny_reward_model if kind == "reward" else tiny_causal_lm
        return build(tok, tiny_config(cfg), seed=cfg.seed), tok  # type: ignore[arg-type]
    _check_exists(model)
    check_safetensors(model)
    tok = tokenizer or load_tokenizer(model, cfg.pad_token)
    try:
        if kind == "reward":
            net = AutoModelForSequenceClassification.from_pretrained(
                model, num_labels=1, use_safetensors=True
            )
        else:
            net = AutoModelForCausalLM.from_pretrained(model, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise _load_error(f"cannot load model '{model}'", exc) from exc
    net.config.pad_token_id = tok.pad_token_id
    return net, tok


def lora_config(cfg: RunConfig, task: str) -> Any:
    """A PEFT LoRA config; for reward models the score head stays trainable and is saved."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        task_type=task,
        modules_to_save=["score"] if task == "SEQ_CLS" else None,
    )


def make_trainer(
    trainer_class: Any, net: Any, args: Any, tok: Any, cfg: RunConfig, lora_task: str, **data: Any
) -> Any:
    """A TRL trainer as tamis configures every one: the model, its args and tokenizer, LoRA
    adapters when `cfg.lora` (PEFT task `lora_task`), the datasets (and any other argument) in
    `data`, and no printing of logs (the run's history and progress bar report them)."""
    from transformers import PrinterCallback

    trainer = trainer_class(
        model=net,
        args=args,
        processing_class=tok,
        peft_config=lora_config(cfg, lora_task) if cfg.lora else None,
        **data,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def save_model(model: Any, tok: PreTrainedTokenizerBase, out: Path) -> None:
    """Save to `out` (LoRA adapters merged into the base weights so the result loads plainly)."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(out)
    tok.save_pretrained(out)


def cpu_args(cfg: RunConfig, out: Path) -> dict[str, Any]:
    """TrainingArguments that work on CPU here (TRL 1.16 + transformers 5), seeded."""
    return {
        "output_dir": str(out / "checkpoints"),
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "activation_checkpointing": False,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "per_device_eval_batch_size": cfg.per_device_train_batch_size,
        "max_length": cfg.max_length,
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "dataset_num_proc": None,
    }


def progress_callback(progress: Any) -> Any:
    """A transformers TrainerCallback that reports (step, total, last log) to `progress`."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        last: dict[str, Any] = {}

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            self.last = dict(logs or {})

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress(state.global_step, state.max_steps, self.last)

    return _Progress()
