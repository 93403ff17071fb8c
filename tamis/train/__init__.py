"""Training on data versions: one self-contained module per method, each with its typed config.

    tamis.train.methods  METHODS, train              the one table of methods (CLI and sweeps)
    tamis.train.job      TrainJob, run_function      what every method's train_* shares
    tamis.train.sft      SFTRunConfig, train_sft        TRL SFTTrainer (prompt/completion, messages)
    tamis.train.reward   RewardRunConfig, train_reward  TRL RewardTrainer (num_labels=1)
    tamis.train.dpo      DPORunConfig, train_dpo        TRL DPOTrainer, explicit frozen reference
    tamis.train.ppo      PPORunConfig, train_ppo        our PPO (TRL 1.16 has none; ppo_learner.py)
    tamis.train.tiny     `--model tiny`: small Llama built from a config + locally trained BPE

Configs are `tamis.config.Config` models (help on every field, checked when built); a run
returns a `tamis.train.runs.TrainSummary`. Nothing heavy is imported here: torch/transformers/trl
load inside the method modules. This package knows nothing of the store: pass frames (or file
paths) and, optionally, version ids.
"""
