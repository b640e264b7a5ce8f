"""Sparse autoencoders behind one small interface: ``encode``, ``decode`` and the decoder
directions ``W_dec`` (one row per feature).

Two sources:
- ``train_sae`` trains a TopK SAE with sae-lens on activations the caller collected
  (the default models have no published SAE);
- ``load_dictionary_learning`` reads a published dictionary_learning checkpoint
  (``ae.pt`` + ``config.json``), the format of the paper's Llama-3.1-8B SAEs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import SAEConfig
from ..errors import UserError


class SAEError(UserError, RuntimeError):
    """An SAE checkpoint that cannot be read; the message names the file."""


@dataclass
class SparseAutoencoder:
    W_enc: torch.Tensor  # d_model × d_sae
    b_enc: torch.Tensor  # d_sae
    W_dec: torch.Tensor  # d_sae × d_model
    b_dec: torch.Tensor  # d_model
    k: int = 0  # keep the k largest activations per token (0 = plain ReLU)
    threshold: float = 0.0  # activations at or under it are zeroed (JumpReLU-style)
    # What the run store or the hub knows it by: the edits built from its directions are
    # keyed by it, since its weights' last bits depend on the thread count that trained it.
    identity: str = ""

    @property
    def d_sae(self) -> int:
        return self.W_dec.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        acts = torch.relu((x.float() - self.b_dec) @ self.W_enc + self.b_enc)
        if self.k:
            top = torch.topk(acts, self.k, dim=-1)
            acts = torch.zeros_like(acts).scatter_(-1, top.indices, top.values)
        if self.threshold:
            acts = acts * (acts > self.threshold)
        return acts

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.W_dec + self.b_dec

    def to(self, device) -> "SparseAutoencoder":
        return SparseAutoencoder(self.W_enc.to(device), self.b_enc.to(device), self.W_dec.to(device),
                                 self.b_dec.to(device), self.k, self.threshold, self.identity)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec,
                "k": torch.tensor(self.k), "threshold": torch.tensor(self.threshold)}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], identity: str = "") -> "SparseAutoencoder":
        return cls(t["W_enc"].float(), t["b_enc"].float(), t["W_dec"].float(), t["b_dec"].float(),
                   int(t["k"]), float(t["threshold"]), identity)


def quality(sae: SparseAutoencoder, activations: torch.Tensor, batch: int = 4096) -> dict[str, float]:
    """Reconstruction on ``activations`` (tokens × d_model): mean squared error, fraction
    of variance explained, mean L0 (active features per token), and the share of
    features that never fire on them (dead)."""
    sq_err = total_var = l0 = 0.0
    device = sae.W_enc.device
    fired = torch.zeros(sae.d_sae, dtype=torch.bool, device=device)
    mean = activations.float().mean(0).to(device)
    with torch.no_grad():
        for start in range(0, len(activations), batch):
            x = activations[start:start + batch].float().to(device)
            f = sae.encode(x)
            sq_err += float(((sae.decode(f) - x) ** 2).sum())
            total_var += float(((x - mean) ** 2).sum())
            l0 += float((f > 0).sum())
            fired |= (f > 0).any(0)
    n = len(activations)
    return {"tokens": n, "mse": sq_err / (n * activations.shape[1]), "explained_variance": 1 - sq_err / total_var,
            "l0": l0 / n, "dead_fraction": 1 - float(fired.float().mean())}


def firing_rates(sae: SparseAutoencoder, activations: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Share of the tokens in ``activations`` on which each feature is active."""
    device = sae.W_enc.device
    fired = torch.zeros(sae.d_sae, device=device)
    with torch.no_grad():
        for start in range(0, len(activations), batch):
            fired += (sae.encode(activations[start:start + batch].to(device)) > 0).float().sum(0)
    return (fired / len(activations)).cpu()


def train_sae(activations: torch.Tensor, cfg: SAEConfig, log_every: int = 0) -> SparseAutoencoder:
    """A TopK SAE trained with sae-lens on ``activations`` (tokens × d_model), passing
    over them in a seeded random order as often as ``cfg.training_tokens`` asks."""
    from sae_lens import LoggingConfig, SAETrainer, TopKTrainingSAEConfig, TrainingSAE
    from sae_lens.config import SAETrainerConfig

    d_model = activations.shape[1]
    torch.manual_seed(cfg.seed)
    # Inputs scaled to an average norm of sqrt(d_model) during training, then the scale
    # is folded into the weights, so the SAE reads raw residuals.
    sae_cfg = TopKTrainingSAEConfig(d_in=d_model, d_sae=cfg.expansion * d_model, k=cfg.k,
                                    rescale_acts_by_decoder_norm=False,
                                    normalize_activations="expected_average_only_in")
    training_sae = TrainingSAE.from_dict(sae_cfg.to_dict())
    trainer_cfg = SAETrainerConfig(
        total_training_samples=cfg.training_tokens, train_batch_size_samples=cfg.batch_tokens, lr=cfg.learning_rate,
        lr_end=cfg.learning_rate / 10, lr_scheduler_name="cosineannealing", lr_warm_up_steps=10, lr_decay_steps=0,
        n_restart_cycles=1, adam_beta1=0.9, adam_beta2=0.999, device="cpu", autocast=False,
        dead_feature_window=cfg.dead_after_steps, feature_sampling_window=2000, n_checkpoints=0, checkpoint_path=None,
        save_final_checkpoint=False, logger=LoggingConfig(log_to_wandb=False), n_batches_for_norm_estimate=10)
    trainer = SAETrainer(trainer_cfg, training_sae, _shuffled_batches(activations, cfg.batch_tokens, cfg.seed))
    trained = trainer.fit()
    if trainer.activation_scaler.scaling_factor is not None:
        trained.fold_activation_norm_scaling_factor(trainer.activation_scaler.scaling_factor)
    state = {name: p.detach().float().clone() for name, p in trained.state_dict().items()}
    return SparseAutoencoder(state["W_enc"], state["b_enc"], state["W_dec"], state["b_dec"], k=cfg.k)


def _shuffled_batches(activations: torch.Tensor, batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(activations), generator=generator)
        for start in range(0, len(order) - batch + 1, batch):
            yield activations[order[start:start + batch]].float()


# dictionary_learning's classes, by the names its config.json gives them.
_DICTIONARY_CLASSES = ("AutoEncoder", "TopKSAE", "BatchTopKSAE")


def from_dictionary_learning(state: dict[str, torch.Tensor], config: dict, where: str) -> SparseAutoencoder:
    """Convert a dictionary_learning state dict (``encoder.weight`` dict × d,
    ``decoder.weight`` d × dict, ``b_dec`` or ``bias``, ``k``/``threshold`` buffers)."""
    dict_class = config.get("trainer", {}).get("dict_class", "")
    if dict_class not in _DICTIONARY_CLASSES:
        raise SAEError(f"{where}: dict_class '{dict_class}' is not one of {', '.join(_DICTIONARY_CLASSES)}")
    try:
        b_dec = state["b_dec"] if "b_dec" in state else state["bias"]
        sae = SparseAutoencoder(W_enc=state["encoder.weight"].float().T.contiguous(),
                                b_enc=state["encoder.bias"].float(),
                                W_dec=state["decoder.weight"].float().T.contiguous(), b_dec=b_dec.float())
    except KeyError as e:
        raise SAEError(f"{where}: no tensor {e} in the {dict_class} checkpoint") from None
    if dict_class == "TopKSAE":
        sae.k = int(state["k"])
    elif dict_class == "BatchTopKSAE":
        # At inference a BatchTopK SAE keeps what clears the threshold learned in training.
        sae.threshold = float(state["threshold"])
        if sae.threshold < 0:
            sae.k = int(state["k"])
    return sae


def load_dictionary_learning(repo: str, subfolder: str) -> SparseAutoencoder:
    """A published SAE from the hub (needs network access or a filled HF cache)."""
    from huggingface_hub import hf_hub_download

    try:
        weights = hf_hub_download(repo, f"{subfolder}/ae.pt")
        config_path = hf_hub_download(repo, f"{subfolder}/config.json")
    except Exception as e:  # noqa: BLE001 - hub errors come in many types; all mean "cannot fetch"
        raise SAEError(f"SAE {repo}/{subfolder}: cannot download ({type(e).__name__}); "
                       "it needs the Hugging Face hub or HF_HOME with the files") from None
    state = torch.load(weights, map_location="cpu", weights_only=True)
    autoencoder = from_dictionary_learning(state, json.loads(Path(config_path).read_text()), f"{repo}/{subfolder}")
    autoencoder.identity = f"{repo}:{subfolder}"
    return autoencoder
