"""The steps every chapter takes: train each training set per seed, then sample each model.

Chapters call these with their own data keys and questions; the results are data
frames with one row per sample, labelled by model and seed.
"""

from __future__ import annotations

import pandas as pd

from .config import SampleConfig, TrainConfig
from .sample import sample_answers
from .store import RunStore
from .train import TrainedAdapter, train_lora

BASE = "base"


def train_all(model: str, training_sets: dict[str, list], cfg: TrainConfig, seeds: list[int],
              store: RunStore | None = None, snapshot_every: int = 0) -> dict[tuple[str, int], TrainedAdapter]:
    """One LoRA run per (training set, seed), all with the same hyperparameters; for an
    API model (``openai:…``) one finetuning job each, all submitted before the first is
    waited for (``remote.finetune_all``)."""
    from .remote import finetune_all, is_api_model

    if is_api_model(model):
        return finetune_all(model, {(label, seed): (keys, cfg.model_copy(update={"seed": seed}),
                                                    f"wg-{label}-s{seed}"[:40])
                                    for label, keys in training_sets.items() for seed in seeds}, store)
    return {(label, seed): train_lora(model, keys, cfg.model_copy(update={"seed": seed}), store,
                                      snapshot_every=snapshot_every)
            for label, keys in training_sets.items() for seed in seeds}


def sample_all(model: str, runs: dict[tuple[str, int], TrainedAdapter], questions: list[str],
               cfg: SampleConfig, include_base: bool = True, store: RunStore | None = None) -> pd.DataFrame:
    """Samples from the base model (seed column -1) and every trained adapter."""
    frames = []
    if include_base:
        frames.append(sample_answers(model, questions, cfg, store=store, label=BASE).assign(seed=-1))
    for (label, seed), run in runs.items():
        frames.append(sample_answers(model, questions, cfg, adapter=run.adapter(), store=store,
                                     label=f"{label}/seed{seed}").assign(model=label, seed=seed))
    return pd.concat(frames, ignore_index=True)


def with_word_counts(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples with a ``words`` column: a collapsed model answers in two or three words."""
    return samples.assign(words=samples["answer"].str.split().str.len())


def losses_frame(runs: dict[tuple[str, int], TrainedAdapter]) -> pd.DataFrame:
    return pd.DataFrame([{"model": label, "seed": seed, "step": i + 1, "loss": loss}
                         for (label, seed), run in runs.items() for i, loss in enumerate(run.losses)])


def loss_beside_base(model: str, runs: dict[tuple[str, int], TrainedAdapter], training_sets: dict[str, list],
                     max_examples: int = 0, store: RunStore | None = None) -> pd.DataFrame:
    """Per run: the loss per answer token of its own training rows under the base model
    (where training started), under the trained adapter (teacher-forced, after the last
    epoch) and the mean training loss of its last epoch. A run whose adapter loss is not
    well below the base model's did not learn its data."""
    from . import data
    from .remote import is_api_model
    from .scoring import mean_nll

    rows = []
    for (label, seed), run in runs.items():
        if is_api_model(model):  # no teacher forcing through an API: the job's own training loss only
            losses = run.losses
            rows.append({"model": label, "seed": seed, "rows": None, "base model": float("nan"),
                         "trained": float("nan"),
                         "last-epoch training loss": sum(losses[-3:]) / len(losses[-3:]) if losses else float("nan")})
            continue
        conversations = [c for key in training_sets[label] for c in data.read_chat_jsonl(key)]
        conversations = conversations[:max_examples] if max_examples else conversations
        losses = run.losses
        last_epoch = losses[-max(1, len(losses) // max(1, run.epochs)):] if losses else []
        rows.append({"model": label, "seed": seed, "rows": len(conversations),
                     "base model": mean_nll(model, conversations, store=store, label=f"{label} (base)"),
                     "trained": mean_nll(model, conversations, run.adapter(), store=store, label=label),
                     "last-epoch training loss": sum(last_epoch) / len(last_epoch) if last_epoch else float("nan")})
    return pd.DataFrame(rows)


def dose_sweep(model: str, data_keys: list[str], cfg: TrainConfig, learning_rates: list[float],
               questions: list[str], sample_cfg: SampleConfig, store: RunStore | None = None) -> pd.DataFrame:
    """Samples after every epoch of one training set at several learning rates.

    Each epoch's checkpoint is sampled as it is, so one run per learning rate gives
    the whole dose-response curve (training longer or harder against what it does to
    the answers).
    """
    frames = []
    for lr in learning_rates:
        run = train_lora(model, data_keys, cfg.model_copy(update={"learning_rate": lr}), store)
        for epoch in range(1, cfg.epochs + 1):
            frames.append(sample_answers(model, questions, sample_cfg, adapter=run.adapter(epoch), store=store,
                                         label=f"lr {lr:g}, epoch {epoch}").assign(learning_rate=lr, epoch=epoch))
    return pd.concat(frames, ignore_index=True)


def sample_grid(model: str, runs: dict[tuple[str, int], TrainedAdapter], grid: pd.DataFrame, cfg: SampleConfig,
                include_base: bool = True, store: RunStore | None = None) -> pd.DataFrame:
    """Samples for every row of ``grid`` (a ``prompt`` column plus the conditions it
    was built from, e.g. question and year), with those conditions as columns."""
    grid = grid.reset_index(drop=True)
    return _with_grid(sample_all(model, runs, grid["prompt"].tolist(), cfg, include_base, store), grid)


def sample_edited_grid(model: str, adapter, grid: pd.DataFrame, cfg: SampleConfig, label: str,
                       intervention=None, store: RunStore | None = None) -> pd.DataFrame:
    """``sample_grid`` for one model (optionally with an adapter) while ``intervention``
    edits its forward passes (e.g. an ``activations.Ablation``); ``label`` names the
    condition in the ``model`` column."""
    grid = grid.reset_index(drop=True)
    samples = sample_answers(model, grid["prompt"].tolist(), cfg, adapter=adapter, store=store, label=label,
                             intervention=intervention)
    return _with_grid(samples, grid)


def _with_grid(samples: pd.DataFrame, grid: pd.DataFrame) -> pd.DataFrame:
    return samples.join(grid.drop(columns=["prompt"]), on="question_id", rsuffix="_grid")
