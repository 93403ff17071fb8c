"""DP-CTGAN: a differentially private conditional tabular GAN (Opacus DP-SGD) with a privacy ledger.

- `config`: `DPCTGANConfig` (the one config of the capability and of the `dp_ctgan` step) and the
  refusal of settings that would weaken the guarantee;
- `stats`: the DP mechanisms of preprocessing (noisy bounds, domains, modes, frequencies);
- `transform`: `DPTransformer`, the reversible encoding built only from public metadata and
  charged DP statistics;
- `nets`: generator and discriminator networks;
- `ctgan`: `DPCTGAN` (fit with DP-SGD, sample, save/load) and the secure RNG.
"""
