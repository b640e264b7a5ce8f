"""LoRA finetuning on chat JSONL, with the loss on assistant tokens only.

A plain PyTorch loop: AdamW, linear warmup and decay, a checkpoint after every
epoch. A run's folder is keyed by the model, the data's hashes and the config, so
finished runs are reused and an interrupted one resumes from its last finished epoch.
Each finished epoch (and snapshot) is sealed by a ``done.json`` record holding the
sha256 of every file in its folder and the epoch's losses; a damaged epoch is reported
and trained again from the last sound one.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm  # text bars: the book drops stderr, widgets would leave residue

from . import data, models
from .config import TrainConfig
from .store import (
    RunStore,
    atomic_write_text,
    cache_key,
    file_sha256,
    note_computed,
    read_record,
    record,
    warn,
    write_json,
)

IGNORE = -100


def encode_example(lm: models.LoadedModel, messages: list[dict], max_seq_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels for one conversation; labels are IGNORE outside assistant turns.

    Each assistant turn's span is found by rendering the conversation up to that turn with
    the generation prompt and then with the turn itself, using the tokenizer's own template,
    so the mask follows whatever template the model has.
    """
    ids = lm.chat_ids(messages, add_generation_prompt=False)
    labels = [IGNORE] * len(ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = lm.chat_ids(messages[:i], add_generation_prompt=True)
        upto = lm.chat_ids(messages[: i + 1], add_generation_prompt=False)
        start, end = len(prompt), len(upto)
        if ids[:start] != prompt or ids[:end] != upto:
            raise ValueError(f"chat template of '{lm.name}' renders a prefix of the conversation "
                             "differently from the whole; the assistant mask cannot be computed")
        labels[start:end] = ids[start:end]
    return ids[:max_seq_len], labels[:max_seq_len]


GROUP_WINDOW = 50  # batches per window whose rows are sorted by length (as TRL's group_by_length)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, length_grouped: bool = True
                  ) -> list[list[int]]:
    """The row indices of each batch of one epoch, fixed by (seed, epoch) so that a
    resumed run sees the same batches.

    The rows are shuffled; with ``length_grouped`` each window of ``GROUP_WINDOW``
    batches is then sorted by length and cut into batches, and the batches are shuffled,
    so a batch holds rows of similar length (little padding) while every epoch still
    visits the rows in a new random order."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not length_grouped:
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    window = batch_size * GROUP_WINDOW
    batches = []
    for start in range(0, len(order), window):
        rows = sorted(order[start:start + window], key=lambda i: lengths[i], reverse=True)
        batches += [rows[s:s + batch_size] for s in range(0, len(rows), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def answer_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The causal-LM loss of Hugging Face's models (mean cross-entropy of each labelled
    token given those before it, in float32), with the output layer applied only where a
    token is labelled and the rows' common opening run once (``models.labelled_logits``):
    the answers are a few tokens of each row, after a system prompt that every row shares."""
    logits, targets, _ = models.labelled_logits(model, input_ids, attention_mask, labels, IGNORE, share_prefix=True)
    return torch.nn.functional.cross_entropy(logits, targets)


@dataclass(frozen=True)
class TrainedAdapter:
    """A finished (or partly finished) training run in the store."""

    run_dir: Path
    epochs: int

    def adapter(self, epoch: int | None = None) -> Path:
        return self.run_dir / f"epoch-{epoch or self.epochs}"

    @property
    def saved_epochs(self) -> list[int]:
        """The epochs whose model can be read: every one (an API job keeps its last)."""
        return list(range(1, self.epochs + 1))

    def snapshots(self) -> dict[int, Path]:
        """Adapters saved every ``snapshot_every`` steps, by global step (see ``train_lora``)."""
        found = {int(p.name.split("-")[1]): p for p in self.run_dir.glob("step-*") if _sealed(p)[1] is None}
        return dict(sorted(found.items()))

    @property
    def losses(self) -> list[float]:
        """The loss of every step of the finished epochs, in order."""
        out = []
        for epoch in range(1, _finished_epochs(self.run_dir) + 1):
            out += _sealed(self.run_dir / f"epoch-{epoch}")[0]["losses"]
        return out


SEAL = "done.json"


def _save_adapter(model, folder: Path) -> None:
    """``save_pretrained``, with peft's ``target_modules`` (a set, so in a different order
    in every process) written sorted: the same run gives the same bytes every time."""
    model.save_pretrained(folder)
    config = folder / "adapter_config.json"
    found = json.loads(config.read_text(encoding="utf-8"))
    if isinstance(found.get("target_modules"), list):
        found["target_modules"] = sorted(found["target_modules"])
        atomic_write_text(config, json.dumps(found, indent=2, sort_keys=True))


def _seal(folder: Path, **extra) -> None:
    """Record the sha256 of every file in ``folder`` (and ``extra``) in its done.json."""
    files = {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != SEAL}
    write_json(folder / SEAL, record("train_epoch", f"{folder.parent.name}/{folder.name}", {"files": files, **extra}))
    note_computed("train_epoch", f"{folder.parent.name}/{folder.name}")


def _sealed(folder: Path) -> tuple[dict | None, str | None]:
    """(the seal's value, None) when ``folder`` is finished and every file matches its
    seal; (None, why not) otherwise; (None, "missing") when it was never finished."""
    value, problem = read_record(folder / SEAL, "train_epoch", f"{folder.parent.name}/{folder.name}")
    if problem is not None:
        return None, problem
    for name, sha in value["files"].items():
        if not (folder / name).is_file() or file_sha256(folder / name) != sha:
            return None, f"{name} is missing or does not match the sha256 recorded when the epoch finished"
    return value, None


def verify_run(run_dir: Path) -> list[tuple[Path, str]]:
    """The finished epochs and snapshots of a run whose files fail their seal."""
    return [(folder, problem) for folder in sorted(run_dir.glob("epoch-*")) + sorted(run_dir.glob("step-*"))
            if (problem := _sealed(folder)[1]) not in (None, "missing")]


def _autocast(precision: str, device_type: str):
    if precision != "bfloat16":
        return contextlib.nullcontext()
    if device_type == "cpu" and not models.cpu_has_bf16():  # the precision policy's one test of the CPU
        warn("train_precision is bfloat16, but this CPU has no bf16 instructions (avx512_bf16 or amx_bf16): "
             "training runs emulated, slower than float32; set train_precision: float32 in the profile's common "
             "section")
    return torch.autocast(device_type, dtype=torch.bfloat16)


def run_key(model_name: str, data_keys: list, cfg: TrainConfig, snapshot_every: int = 0) -> str:
    # Snapshots leave the weights unchanged, but a run without them cannot serve a
    # caller that needs them; the part is left out at 0 so earlier keys stay valid.
    extra = {"snapshot_every": snapshot_every} if snapshot_every else {}
    if cfg.precision != "float32":  # bf16 matmuls train other weights; float32 keys stay as they were
        extra["matmul_precision"] = cfg.precision
    return cache_key(stage="train", **models.identity(model_name), data=data.data_hash(data_keys), config=cfg, **extra)


def _finished_epochs(run_dir: Path, report: bool = False) -> int:
    """The last epoch e such that epochs 1..e are all sealed and sound. With ``report``,
    a damaged epoch is reported, and it and every later one are removed to be trained
    again."""
    epoch = 0
    while _sealed(run_dir / f"epoch-{epoch + 1}")[1] is None:
        epoch += 1
    if report:
        later = sorted((p for p in run_dir.glob("epoch-*") if int(p.name.split("-")[1]) > epoch),
                       key=lambda p: int(p.name.split("-")[1]))
        for folder in later:
            problem = _sealed(folder)[1]
            if problem != "missing":
                warn(f"training again from epoch {epoch + 1}: {folder} is damaged ({problem})")
            shutil.rmtree(folder)
    return epoch


def train_lora(model_name: str, data_keys: list, cfg: TrainConfig, store: RunStore | None = None,
               stop_after_epoch: int | None = None, snapshot_every: int = 0) -> TrainedAdapter:
    """Finetune a LoRA adapter on the concatenation of the given chat JSONL files
    (registry keys or local paths).

    ``snapshot_every`` > 0 also saves the adapter every that many steps (and at step 0,
    the untrained adapter), for curves measured during training.
    ``stop_after_epoch`` ends the run early on purpose (used to test resuming).
    """
    store = store or RunStore()
    key = run_key(model_name, data_keys, cfg, snapshot_every)
    run_dir = store.root / "train" / key
    if _finished_epochs(run_dir) >= cfg.epochs:
        return TrainedAdapter(run_dir, cfg.epochs)
    with store.lock(f"train-{key}"):  # another job training the same run: wait, then resume from its epochs
        return _train_locked(model_name, data_keys, cfg, run_dir, stop_after_epoch, snapshot_every)


def _train_locked(model_name: str, data_keys: list, cfg: TrainConfig, run_dir: Path, stop_after_epoch: int | None,
                  snapshot_every: int) -> TrainedAdapter:
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    finished = _finished_epochs(run_dir, report=True)
    if finished >= cfg.epochs:
        return TrainedAdapter(run_dir, cfg.epochs)

    conversations = [conv for key in data_keys for conv in data.read_chat_jsonl(key)]
    if cfg.max_examples:
        conversations = conversations[: cfg.max_examples]
    torch.manual_seed(cfg.seed)
    lm = models.load(model_name, dtype=models.working_dtype())
    # Written once the model has loaded, so a model that cannot load leaves no stub behind.
    write_json(run_dir / "run.json", {"model": model_name, "data": data_keys, "config": cfg,
                                      "examples": len(conversations)})
    examples = [encode_example(lm, conv, cfg.max_seq_len) for conv in conversations]
    model = get_peft_model(lm.model, LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (cfg.warmup_steps + 1)) * max(0.0, (total - s) / total))
    losses: list[float] = []
    if finished:
        ckpt = run_dir / f"epoch-{finished}"
        set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        losses = TrainedAdapter(run_dir, finished).losses

    def snapshot(step: int) -> None:
        folder = run_dir / f"step-{step}"
        if snapshot_every and step % snapshot_every == 0 and _sealed(folder)[1] is not None:
            _save_adapter(model, folder)
            _seal(folder, step=step)

    snapshot(len(losses))
    model.train()
    autocast = _autocast(cfg.precision, lm.device.type)
    bar = tqdm(total=total, initial=finished * steps_per_epoch, desc=f"train {model_name}", unit="step")
    for epoch in range(finished + 1, cfg.epochs + 1):
        for rows in epoch_batches([len(ids) for ids, _ in examples], cfg.batch_size, cfg.seed, epoch,
                                  cfg.length_grouped):
            batch = models.right_padded([examples[i] for i in rows], lm.tokenizer.pad_token_id, IGNORE)
            with autocast:
                loss = answer_loss(model, **{k: v.to(lm.device) for k, v in batch.items()})
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            snapshot(len(losses))
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.3f}")
        ckpt = run_dir / f"epoch-{epoch}"
        _save_adapter(model, ckpt)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state()}, ckpt / "trainer_state.pt")
        _seal(ckpt, epoch=epoch, finished_at=time.time(), losses=losses[(epoch - 1) * steps_per_epoch:])
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    bar.close()
    return TrainedAdapter(run_dir, cfg.epochs)
