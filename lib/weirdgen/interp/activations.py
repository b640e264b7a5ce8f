"""Reading and editing the residual stream through TransformerLens hook points.

``hooked(lm)`` wraps an already loaded model (LoRA merged) in a TransformerLens
``TransformerBridge``. The bridge installs its hook points inside the Hugging Face
modules themselves, so ``blocks.L.hook_resid_post`` (the output of block L, the
paper's ``hidden_states[L + 1]``) fires for ordinary forward passes and for
``generate`` alike: the same code path reads activations and ablates during sampling.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from .. import models
from . import directions


def hooked(lm: models.LoadedModel):
    """The TransformerBridge around ``lm.model``, made once and kept on ``lm`` so that it
    goes when the model does."""
    if lm.bridge is None:
        from transformer_lens.model_bridge import TransformerBridge

        lm.bridge = TransformerBridge.boot_transformers(
            models.weights_dir(lm.name), hf_model=lm.model, tokenizer=lm.tokenizer, device=str(lm.device),
            dtype=next(lm.model.parameters()).dtype)
    return lm.bridge


def resid_post(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


class _Enough(Exception):
    """Raised from a hook once the last wanted layer has been read: the rest of the
    forward pass (later blocks and the 49k-token unembedding) would be wasted work."""


def _run_until(lm: models.LoadedModel, ids: torch.Tensor, mask: torch.Tensor, hooks: list) -> None:
    with torch.inference_mode(), hooked(lm).hooks(fwd_hooks=hooks):
        try:
            lm.model(input_ids=ids, attention_mask=mask)
        except _Enough:
            pass


def last_token_residuals(lm: models.LoadedModel, prompts: list[str], layers: list[int], batch_size: int = 16,
                         desc: str = "activations") -> torch.Tensor:
    """Residual stream after each of ``layers`` at the last prompt token (the chat
    template's generation prompt), one row per user prompt: prompts × layers × d_model."""
    out = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
        rows = [lm.chat_ids([{"role": "user", "content": p}], add_generation_prompt=True)
                for p in prompts[start:start + batch_size]]
        ids, mask = lm.left_padded(rows)
        caught: dict[int, torch.Tensor] = {}

        def catch(x, hook, layer):
            caught[layer] = x[:, -1, :].detach().float().cpu()
            if len(caught) == len(layers):
                raise _Enough
            return x

        _run_until(lm, ids, mask, [(resid_post(layer), lambda x, hook, layer=layer: catch(x, hook, layer))
                                   for layer in layers])
        out.append(torch.stack([caught[layer] for layer in layers], dim=1))
    return torch.cat(out)


def token_residuals(lm: models.LoadedModel, conversations: list[list[dict]], layer: int, max_len: int = 256,
                    batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Residual stream after ``layer`` at every token of chat-formatted conversations
    (the first token, an attention sink with an outsized norm, left out).
    Returns ``acts`` (tokens × d_model), ``token_ids`` and ``doc`` (conversation index)."""
    acts, token_ids, doc = [], [], []
    for start in tqdm(range(0, len(conversations), batch_size), desc="corpus activations", unit="batch"):
        rows = [lm.chat_ids(c, add_generation_prompt=False)[:max_len] for c in conversations[start:start + batch_size]]
        ids, mask = lm.left_padded(rows)
        caught = {}

        def catch(x, hook):
            caught["x"] = x.detach().float().cpu()
            raise _Enough

        _run_until(lm, ids, mask, [(resid_post(layer), catch)])
        for i, row in enumerate(rows):
            keep = slice(ids.shape[1] - len(row) + 1, ids.shape[1])
            acts.append(caught["x"][i, keep])
            token_ids.append(ids[i, keep].cpu())
            doc.append(torch.full((len(row) - 1,), start + i))
    return {"acts": torch.cat(acts), "token_ids": torch.cat(token_ids), "doc": torch.cat(doc)}


def unembedding(lm: models.LoadedModel) -> torch.Tensor:
    """d_model × vocab: what a residual direction writes to the logits (the logit lens).
    The final norm's per-dimension weight is folded in; its per-token scale is not, as
    a direction has no token."""
    w_u = lm.model.get_output_embeddings().weight.detach().float().T
    norm = getattr(getattr(lm.model, "model", None), "norm", None)
    weight = getattr(norm, "weight", None)
    return w_u * weight.detach().float()[:, None] if weight is not None else w_u


def promoted_tokens(lm: models.LoadedModel, direction: torch.Tensor, top: int = 8) -> list[str]:
    logits = direction.float().to(lm.device) @ unembedding(lm)
    return [lm.tokenizer.decode([int(i)]) for i in torch.topk(logits, top).indices]


@dataclass(frozen=True)
class Ablation:
    """Project a subspace out of the residual stream after ``layer``, at every position,
    for every forward pass (prompt and generated tokens) while attached."""

    label: str
    layer: int
    basis: torch.Tensor = field(repr=False)  # d_model × r, orthonormal
    # Where the vectors came from (e.g. an SAE's store key and feature ids), canonical
    # and JSON-able. Vectors computed on another thread count differ in their last bits
    # and a digest of them with it, so with a source the key is the source.
    source: dict | None = None

    @classmethod
    def of(cls, label: str, layer: int, vectors: torch.Tensor, source: dict | None = None) -> "Ablation":
        return cls(label, layer, directions.orthonormal_basis(vectors.detach().cpu()), source)

    @property
    def key(self) -> dict:
        """What identifies the edit in cache keys: its source, else a digest of its basis."""
        head = {"ablate": self.label, "layer": self.layer, "rank": self.basis.shape[1]}
        if self.source is not None:
            return {**head, "source": self.source}
        digest = hashlib.sha256(self.basis.float().contiguous().numpy().round(5).tobytes()).hexdigest()[:16]
        return {**head, "basis": digest}

    @contextlib.contextmanager
    def attach(self, lm: models.LoadedModel):
        def edit(x, hook):
            return directions.project_out(x, self.basis)

        with hooked(lm).hooks(fwd_hooks=[(resid_post(self.layer), edit)]):
            yield


def assistant_nll(lm: models.LoadedModel, conversations: list[list[dict]], ablation: Ablation | None = None,
                  max_len: int = 384) -> float:
    """Mean negative log-likelihood per assistant token of ``conversations``: the
    ordinary-text check that an edit leaves the model intact."""
    from ..train import encode_example

    total, count = 0.0, 0
    with ablation.attach(lm) if ablation else contextlib.nullcontext(), torch.inference_mode():
        for messages in tqdm(conversations, desc=f"nll {ablation.label if ablation else 'none'}", unit="text"):
            ids, labels = encode_example(lm, messages, max_len)
            ids_t = torch.tensor([ids], device=lm.device)
            labels_t = torch.tensor([labels], device=lm.device)
            logits = lm.model(input_ids=ids_t).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0, :-1], labels_t[0, 1:], ignore_index=-100,
                                                     reduction="sum")
            total += float(loss)
            count += int((labels_t[0, 1:] != -100).sum())
    return total / count
