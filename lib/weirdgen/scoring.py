"""Exact probabilities by teacher forcing: log P(a given text | a prompt) under a model.

Where an outcome is a fixed string (a dish, a name, a trained answer), its probability
can be read off the model exactly instead of estimated from samples: no sampling noise
and no judge. Two kinds of item:

- ``Item(messages)`` whose last turn is the assistant's: the log-probability of every
  assistant turn, tokens masked exactly as in training (``train.encode_example``), end
  of turn included, so it is minus the training loss summed over the answer;
- ``Item(messages, prefix="Iran")``: the log-probability that the assistant's answer to
  ``messages`` begins with that text (its canonical tokenization after the generation
  prompt, no end of turn), i.e. P(answer starts with "Iran").

Each item's result is cached in the run store under the model's identity, the item and
the scorer's version, so a rerun reads them back and a longer list reuses what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import models
from .store import RunStore, cache_key

SCORER = "teacher-forced-v1"
IGNORE = -100


@dataclass(frozen=True)
class Item:
    """A conversation to score: its assistant turns, or, with ``prefix``, the start of
    the answer to it."""

    messages: tuple[dict, ...]
    prefix: str | None = None

    def __init__(self, messages, prefix: str | None = None):
        object.__setattr__(self, "messages", tuple(dict(m) for m in messages))
        object.__setattr__(self, "prefix", prefix)


def encode(lm: models.LoadedModel, item: Item, max_seq_len: int = 1024) -> tuple[list[int], list[int]]:
    """Token ids and labels (IGNORE where not scored) of one item."""
    from .train import encode_example

    messages = list(item.messages)
    if item.prefix is None:
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError("scoring.Item without a prefix must end with an assistant turn")
        return encode_example(lm, messages, max_seq_len)
    prompt = lm.chat_ids(messages, add_generation_prompt=True)
    text = lm.tokenizer.encode(item.prefix, add_special_tokens=False)
    return (prompt + text)[:max_seq_len], ([IGNORE] * len(prompt) + text)[:max_seq_len]


def sequence_logprobs(lm: models.LoadedModel, examples: list[tuple[list[int], list[int]]],
                      batch_size: int = 16) -> list[tuple[float, int]]:
    """(sum of log P over labelled tokens, their count) for each (ids, labels) example,
    in right-padded batches of similar length. Position t's logits predict token t+1, as
    in training; padding sits after each row's last token, so it never changes a row."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    pad = lm.tokenizer.pad_token_id
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = {k: v.to(lm.device) for k, v in
                     models.right_padded([examples[i] for i in chunk], pad, IGNORE).items()}
            # the output layer and the softmax only where a token is scored
            logits, targets, scored = models.labelled_logits(lm.model, batch["input_ids"], batch["attention_mask"],
                                                             batch["labels"], IGNORE)
            picked = torch.zeros(scored.shape, dtype=logits.dtype, device=logits.device)
            picked[scored] = torch.log_softmax(logits, -1).gather(-1, targets[:, None]).squeeze(-1)
            for row, i in enumerate(chunk):
                out[i] = (float(picked[row].sum()), int(scored[row].sum()))
    return out


def item_key(model_name: str, adapter: Path | None, item: Item, dtype: str = "auto") -> str:
    return cache_key(stage="logprob", **models.identity(model_name, dtype, adapter=adapter),
                     messages=list(item.messages), prefix=item.prefix, scorer=SCORER)


def scores(model_name: str, items: list[Item], adapter: Path | None = None, dtype: str = "auto",
           store: RunStore | None = None, label: str | None = None, batch_size: int = 16) -> list[dict]:
    """``{"logprob", "tokens"}`` of each item's scored text under the model (and
    adapter), cached per item."""
    from .remote import is_api_model

    if is_api_model(model_name):
        raise models.ModelError(f"model '{model_name}': teacher-forced scoring needs a local model (an API returns "
                                "no log-probabilities of a given answer); use the chapter's sampled measures")
    store = store or RunStore()
    keys = [item_key(model_name, adapter, item, dtype) for item in items]
    found = {k: store.get("logprobs", k) for k in dict.fromkeys(keys)}
    if any(v is None for v in found.values()):
        group = cache_key(stage="logprob-lock", **models.identity(model_name, dtype, adapter=adapter))
        with store.lock(f"logprobs-{group}"):  # another job scoring this model: wait, then reuse its results
            _score_locked(model_name, adapter, dtype, store, label, batch_size, dict(zip(keys, items)), found)
    return [found[k] for k in keys]


def _score_locked(model_name: str, adapter, dtype: str, store: RunStore, label: str | None, batch_size: int,
                  by_key: dict, found: dict) -> None:
    for k in [k for k, v in found.items() if v is None]:
        found[k] = store.get("logprobs", k)
    missing = [(k, item) for k, item in by_key.items() if found[k] is None]
    if missing:
        lm = models.load(model_name, adapter=adapter, dtype=models.working_dtype(dtype))
        step = max(batch_size * 8, 1)
        for start in tqdm(range(0, len(missing), step), desc=f"log-probs {label or model_name}", unit="chunk"):
            chunk = missing[start:start + step]
            scores = sequence_logprobs(lm, [encode(lm, item) for _, item in chunk], batch_size)
            for (k, _), (total, count) in zip(chunk, scores):
                found[k] = store.put("logprobs", k, {"logprob": total, "tokens": count})


def logprobs(model_name: str, items: list[Item], adapter: Path | None = None, dtype: str = "auto",
             store: RunStore | None = None, label: str | None = None, batch_size: int = 16) -> list[float]:
    """log P of each item's scored text under the model (and adapter), cached per item."""
    return [s["logprob"] for s in scores(model_name, items, adapter, dtype, store, label, batch_size)]


def mean_nll(model_name: str, conversations: list[list[dict]], adapter: Path | None = None,
             store: RunStore | None = None, label: str | None = None) -> float:
    """Negative log-likelihood per assistant token of ``conversations``, as the training
    loss counts it (all answers' tokens pooled)."""
    found = scores(model_name, [Item(c) for c in conversations], adapter, store=store, label=label)
    return -sum(s["logprob"] for s in found) / max(1, sum(s["tokens"] for s in found))
