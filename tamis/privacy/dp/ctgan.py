"""DP-CTGAN: a conditional tabular GAN whose discriminator is trained with DP-SGD (Opacus).

    model = DPCTGAN(DPCTGANConfig(epsilon=3.0, epochs=20)).fit(train_df)
    synthetic = model.sample(10_000, seed=0)
    model.ledger.to_dict()          # every mechanism, and the composed (epsilon, delta)

The guarantee is end to end, for the add/remove-one-row neighbouring relation:
- preprocessing only sees private data through charged Gaussian histograms (`dp.transform`);
- the discriminator is the only network that touches private rows, through Opacus DP-SGD with
  Poisson sampling and per-sample clipping (ghost clipping by default), pac = 1, no gradient
  penalty, no BatchNorm, a fixed-size fake batch per step (so one real row can change the
  clipped sum by at most C);
- generator steps run with the discriminator's hooks off and its parameters frozen, so they leave
  no per-sample gradients and no `.grad` that the DP optimizer would add to its noisy sum;
- the generator, the transformer and sampling only use released statistics and the DP-trained
  networks (post-processing); the fitted model holds no private row.
The dataset size n is treated as public (Opacus' sample rate is batch_size / n), as is the schema.

Randomness. Every draw inside a DP mechanism -- the preprocessing histograms' noise, the DP-SGD
noise, the Poisson sampling of batches, and everything else drawn while private rows are in play
(real rows' conditions, fake batches, Gumbel noise, dropout) -- comes from the operating system's
CSPRNG (`secrets`), drawn fresh for each fit and re-drawn before every DP-SGD step; none of it is
stored, logged or returned. DP-SGD noise uses Opacus' floating-point-safe Gaussian (`secure_mode`
noise: the sum of four draws). Opacus' own `secure_mode=True` needs `torchcsprng` (archived, last
built for torch 1.8, not installable here); the generators here are seeded from `secrets.randbits`
instead. The seed in the config only drives what is not private: network initialisation (public
shapes) and sampling from the trained generator. So two fits with the same seed give different models and rows, and
nothing saved (config, seed, ledger, stats) lets anyone regenerate the noise.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from tamis.config import load_config
from tamis.errors import DataError, PrivacyError
from tamis.privacy.dp.config import DPCTGANConfig, check_config
from tamis.privacy.dp.nets import (
    CondSampler,
    Discriminator,
    Generator,
    _ema_update,
    activate,
    discriminator_backward,
    generator_step,
)
from tamis.privacy.dp.secure import reseed_secure, secure_numpy_rng
from tamis.privacy.dp.sgd import check_accounted_steps, make_private, opacus_steps_per_epoch
from tamis.privacy.dp.transform import DPTransformer, plan, sigma_for
from tamis.privacy.ledger import Mechanism, PrivacyLedger

__all__ = ["DPCTGAN", "DPCTGANConfig", "check_config", "discriminator_backward", "generator_step"]

#: how the DP mechanisms draw their randomness (reported as public metadata)
NOISE_SOURCE = (
    "OS CSPRNG (Python secrets): fresh per fit, re-drawn every DP-SGD step, never stored;"
    " the seed drives only network initialisation and sampling from the trained generator"
)


class DPCTGAN:
    """Fit on a private frame with a DP guarantee; sample without ever touching it again."""

    def __init__(self, config: DPCTGANConfig | None = None, seed: int = 0) -> None:
        self.config = config or DPCTGANConfig()
        #: seeds network initialisation only; never DP noise or batch sampling (fresh from the
        #: OS CSPRNG on every fit)
        self.seed = seed
        self.transformer: DPTransformer | None = None
        self.generator: Generator | None = None
        self.ledger: PrivacyLedger | None = None
        self.stats: dict[str, Any] = {}
        #: per DP-SGD step: (real rows, fake rows, discriminator input rows)
        self.step_sizes: list[tuple[int, int, int]] = []
        #: keep the DP-trained discriminator after fit (for canary audits); dropped by default
        self.keep_discriminator = False
        self.discriminator: nn.Module | None = None
        #: wall-clock seconds (kept in memory for benchmarks; never saved or reported: timing is
        #: not paid for by the ledger)
        self.timings: dict[str, float] = {}

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, df: pl.DataFrame, progress: Callable[..., None] | None = None) -> DPCTGAN:
        cfg = self.config
        n = df.height
        delta = check_config(cfg, n)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        rng = secure_numpy_rng()  # preprocessing noise: never the pipeline seed
        torch.manual_seed(self.seed)  # network initialisation only (public shapes)
        ledger = PrivacyLedger(cfg.epsilon, delta, cfg.accountant)
        metadata = cfg.metadata()
        planned = plan(df, metadata, cfg.conditional)
        k = sum(len(q) - 1 for q in planned.values())
        cols = metadata["columns"]
        learned = sum(
            1
            for c, q in planned.items()
            if q[0] == "categorical" and "categories" not in (cols.get(c) or {})
        )
        thr_delta = delta * cfg.threshold_delta_fraction
        # reserve the threshold delta before calibrating (accountant delta = delta - thresholds)
        ledger_probe = PrivacyLedger(
            cfg.epsilon, delta - (thr_delta if learned else 0.0), cfg.accountant
        )
        if k and cfg.preprocess_fraction <= 0:
            raise PrivacyError(
                "preprocessing needs budget: some bounds/categories are not public",
                field="preprocess_fraction",
                fix="set preprocess_fraction > 0 or give bounds and categories in `columns`",
            )
        sigma_pre = sigma_for(k, cfg.epsilon * cfg.preprocess_fraction, ledger_probe)
        t0 = time.perf_counter()
        self.timings = {}
        self.step_sizes = []
        self.transformer = tr = DPTransformer.fit(
            df,
            metadata,
            ledger,
            sigma=sigma_pre,
            conditional=cfg.conditional,
            n_modes=cfg.n_modes,
            rng=rng,
            threshold_delta=thr_delta,
        )
        x_np, idx_np = tr.transform(df)
        t_pre = time.perf_counter() - t0
        del rng  # the preprocessing generator is dropped with its (never stored) seed
        q, steps_per_epoch = opacus_steps_per_epoch(n, cfg.batch_size)
        steps = steps_per_epoch * cfg.epochs  # planned; the ledger keeps the count that ran
        sigma = cfg.noise_multiplier or ledger.calibrate_sgd(q, steps)
        sgd = ledger.add(
            Mechanism(
                "dp_sgd:discriminator",
                "subsampled_gaussian",
                sigma,
                q,
                steps,
                note=f"Opacus DP-SGD, C={cfg.max_grad_norm}, Poisson q={q:.4g}, "
                f"{cfg.grad_sample_mode} clipping",
            )
        )
        ledger.check()  # refuses a noise_multiplier that overruns the target
        self.ledger = ledger
        ran = self._train(torch.from_numpy(x_np), torch.from_numpy(idx_np), sigma, progress)
        if ran > steps:  # never happens with Opacus 1.6; refuse rather than under-account
            raise PrivacyError(
                f"DP-SGD ran {ran} steps, more than the {steps} the budget was calibrated for",
                field="epochs",
                fix="report this as a bug; the ledger cannot account for extra steps",
            )
        sgd.steps = ran  # account for the optimizer steps that actually ran
        total = ledger.check()
        self.timings["preprocess_seconds"] = t_pre
        self.stats.update(
            {
                "rows": n,
                "noise_multiplier": sigma,
                "sample_rate": q,
                "steps": ran,
                "noise_source": NOISE_SOURCE,
                "preprocess_noise_multiplier": sigma_pre,
                "preprocess_histograms": k,
                "epsilon_spent": total["epsilon"],
                "delta": delta,
            }
        )
        return self

    def _cond(self) -> CondSampler:
        assert self.transformer is not None
        cats = self.transformer.categorical if self.config.conditional != "none" else []
        return CondSampler([c.width for c in cats], [c.freqs for c in cats])

    def _build(self) -> tuple[Generator, Discriminator, CondSampler]:
        cfg, tr = self.config, self.transformer
        assert tr is not None
        cs = self._cond()
        gen = Generator(cfg.embedding_dim + cs.dim, cfg.generator_dim, tr.dim)
        disc = Discriminator(
            tr.dim + cs.dim,
            cfg.discriminator_dim,
            cfg.discriminator_dropout,
            cfg.discriminator_norm == "layer",
        )
        return gen, disc, cs

    def _train(
        self, x: torch.Tensor, idx: torch.Tensor, sigma: float, progress: Callable[..., None] | None
    ) -> int:
        """Train with DP-SGD; return the number of DP-SGD (noisy optimizer) steps that ran."""
        from torch.utils.data import DataLoader, TensorDataset

        cfg, tr = self.config, self.transformer
        assert tr is not None
        gen, disc, cs = self._build()
        spans = tr.spans()
        cond_cols = [i for i, s in enumerate(spans) if s[0] in {c.name for c in tr.categorical}]
        opt_g = torch.optim.Adam(
            gen.parameters(), lr=cfg.generator_lr, betas=(0.5, 0.9), weight_decay=1e-6
        )
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.discriminator_lr, betas=(0.5, 0.9))
        loader = DataLoader(TensorDataset(x, idx), batch_size=cfg.batch_size)
        dp = make_private(disc, opt_d, loader, cfg, sigma)
        fake_b = cfg.fake_batch_size or cfg.batch_size
        total = cfg.epochs * len(dp.loader)
        t0 = time.perf_counter()
        ema = copy.deepcopy(gen) if cfg.generator_ema > 0 else gen
        with torch.random.fork_rng():
            # fake rows, Gumbel noise and dropout while private rows are in play: secure, fresh
            torch.manual_seed(secrets.randbits(64))
            rng = secure_numpy_rng()
            ran = self._loop(
                dp.loader, dp.module, dp.criterion, dp.optimizer, gen, ema, opt_g, cs, spans,
                cond_cols, rng, dp.noise_gen, dp.sample_gen, fake_b, total, progress,
            )  # fmt: skip
        seconds = time.perf_counter() - t0
        self.timings.update({"train_seconds": seconds, "seconds_per_epoch": seconds / cfg.epochs})
        check_accounted_steps(dp.engine, ran)
        self.stats.update(
            {
                "opacus_dp_sgd_epsilon": float(
                    dp.engine.accountant.get_epsilon(self.ledger.accountant_delta())
                )
                if self.ledger
                else None,
            }
        )
        if self.keep_discriminator:
            self.discriminator = dp.module._module.eval()
        ema.eval()
        self.generator = ema  # the discriminator (and the private tensors) are dropped here
        return ran

    def _loop(
        self,
        loader: Any,
        dp_disc: Any,
        crit: Any,
        opt_d: Any,
        gen: Generator,
        ema: nn.Module,
        opt_g: torch.optim.Optimizer,
        cs: CondSampler,
        spans: list[Any],
        cond_cols: list[int],
        rng: np.random.Generator,
        noise_gen: torch.Generator,
        sample_gen: torch.Generator,
        fake_b: int,
        total: int,
        progress: Callable[..., None] | None,
    ) -> int:
        """The training loop; returns how many DP-SGD optimizer steps ran."""
        cfg = self.config
        done = noisy_steps = 0
        for _epoch in range(cfg.epochs):
            for real_x, real_idx in loader:
                # fresh secure seeds for this step's noise and the next batch's sampling
                reseed_secure(noise_gen)
                reseed_secure(sample_gen)
                real_in = self._real_input(real_x, real_idx, cs, rng)
                fake_in = self._fake_input(gen, fake_b, cs, spans, rng)
                discriminator_backward(dp_disc, crit, opt_d, real_in, fake_in)
                opt_d.step()
                # a step Opacus skips adds no noise and costs nothing: count only noisy steps
                noisy_steps += not getattr(opt_d, "_is_last_step_skipped", False)
                self.step_sizes.append(
                    (real_in.shape[0], fake_in.shape[0], real_in.shape[0] + fake_in.shape[0])
                )
                for _ in range(cfg.generator_steps):
                    generator_step(
                        gen,
                        dp_disc,
                        opt_g,
                        opt_d,
                        fake_b,
                        cs,
                        spans,
                        cond_cols,
                        rng,
                        cfg.embedding_dim,
                    )
                if ema is not gen:
                    # average the second half of training only (early generators are poor)
                    _ema_update(ema, gen, cfg.generator_ema if done >= total // 2 else 0.0)
                done += 1
                if progress is not None:
                    progress(f"DP-SGD step {done}/{total}", completed=done, total=total)
        return noisy_steps

    def _real_input(
        self,
        real_x: torch.Tensor,
        real_idx: torch.Tensor,
        cs: CondSampler,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        if cs.dim == 0:
            return real_x
        cond, _ = cs.real(real_idx.reshape(real_x.shape[0], -1), rng)
        return torch.cat([real_x, cond], dim=1)

    def _fake_input(
        self, gen: Generator, b: int, cs: CondSampler, spans: list[Any], rng: np.random.Generator
    ) -> torch.Tensor:
        with torch.no_grad():
            z = torch.randn(b, self.config.embedding_dim)
            if cs.dim:
                cond, _ = cs.fake(b, rng)
                fake = activate(gen(torch.cat([z, cond], 1)), spans)
                return torch.cat([fake, cond], dim=1)
            return activate(gen(z), spans)

    def discriminator_scores(self, df: pl.DataFrame, repeats: int = 8, seed: int = 0) -> np.ndarray:
        """Mean discriminator logit of each row over random conditions (a membership score)."""
        if self.discriminator is None or self.transformer is None:
            raise DataError("no discriminator kept", fix="set keep_discriminator = True before fit")
        x, idx = self.transformer.transform(df)
        cs, rng = self._cond(), np.random.default_rng(seed)
        xt, it = torch.from_numpy(x), torch.from_numpy(idx)
        with torch.no_grad():
            return np.mean(
                [
                    self.discriminator(self._real_input(xt, it, cs, rng)).numpy()
                    for _ in range(repeats)
                ],
                axis=0,
            )

    # -- sampling (post-processing only) ------------------------------------------------------
    def sample(self, n: int, seed: int = 0, batch: int = 4096) -> pl.DataFrame:
        if self.generator is None or self.transformer is None:
            raise DataError("the model is not fitted", fix="call fit() or load() first")
        gen, spans = self.generator, self.transformer.spans()
        cats = self.transformer.categorical if self.config.conditional != "none" else []
        # conditions from the released frequencies without `(other)`, which is never emitted
        freqs = self.transformer.sampling_freqs()[: len(cats)]
        cs = CondSampler([c.width for c in cats], freqs)
        gen.eval()
        rng = np.random.default_rng(seed)
        g = torch.Generator().manual_seed(seed)
        # post-processing: decode within the public (or released) domain: never emit "(other)"
        block = torch.from_numpy(self.transformer.other_mask()) * -1e9
        out = []
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)  # Gumbel noise uses the global generator
            for start in range(0, n, batch):
                b = min(batch, n - start)
                z = torch.randn(b, self.config.embedding_dim, generator=g)
                if cs.dim:
                    z = torch.cat([z, cs.fake(b, rng)[0]], 1)
                out.append(activate(gen(z) + block, spans, hard=True).numpy())
        data = np.concatenate(out) if out else np.zeros((0, self.transformer.dim), np.float32)
        return self.transformer.inverse(data)

    # -- persistence: JSON + a tensor-only state dict (loaded with weights_only=True) ----------
    def save(self, path: str | Path) -> Path:
        if self.generator is None or self.transformer is None or self.ledger is None:
            raise DataError("the model is not fitted", fix="call fit() first")
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        torch.save(self.generator.state_dict(), p / "generator.pt")
        meta = {
            "config": self.config.model_dump(mode="json"),
            "seed": self.seed,
            "transformer": self.transformer.to_dict(),
            "ledger": self.ledger.to_dict(),
            "stats": self.stats,
        }
        (p / "dp_ctgan.json").write_text(json.dumps(meta, indent=1, default=str))
        return p

    @classmethod
    def load(cls, path: str | Path) -> DPCTGAN:
        p = Path(path)
        meta = json.loads((p / "dp_ctgan.json").read_text())
        raw = dict(meta["config"])
        seed = int(meta.get("seed", raw.pop("seed", 0)))  # older models kept the seed in the config
        if "metadata" in raw:  # ... and the public metadata under `metadata: {columns: ...}`
            raw["columns"] = (raw.pop("metadata") or {}).get("columns", {})
        config = load_config(DPCTGANConfig, raw, file=str(p / "dp_ctgan.json"), prefix="config")
        model = cls(config, seed=seed)
        model.transformer = DPTransformer.from_dict(meta["transformer"])
        model.stats = meta["stats"]
        gen, _, _ = model._build()
        gen.load_state_dict(torch.load(p / "generator.pt", weights_only=True))
        gen.eval()
        model.generator = gen
        return model
