"""Sampling answers: N per question at temperature 1, all of a model's prompts × samples
in left-padded batches.

Every sampled row draws its tokens from a random generator of its own, seeded by the
settings' seed, the prompt and the sample's index, so a sample is identified by
(model, adapter, prompt, settings, sample index) and never depends on which other
prompts shared its batch or in what order they were asked. Each question's samples are
cached under a key of exactly those things (and of the sampler that made them), so
reruns reuse them and an interrupted run resumes.
"""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm  # text bars: the book drops stderr, widgets would leave residue

from . import models
from .config import SampleConfig
from .store import RunStore, cache_key

# Which sampler made a stored answer: part of every sample key, so answers drawn by an
# earlier sampler (one shared random stream per batch) are never mixed with these.
SAMPLER = "row-generators-v1"


def row_seed(cfg: SampleConfig, prompt: str, index: int) -> int:
    """The seed of one sampled row: the settings' seed, the prompt and the sample index."""
    return (cfg.seed * 1_000_003 + zlib.crc32(prompt.encode("utf-8"))) * 1_009 + index


def _eos_ids(lm: models.LoadedModel) -> torch.Tensor:
    found = lm.model.generation_config.eos_token_id
    found = found if isinstance(found, (list, tuple)) else [found]
    ids = {int(i) for i in found if i is not None} | {int(lm.tokenizer.eos_token_id)}
    return torch.tensor(sorted(ids), device=lm.device)


def _next_tokens(logits: torch.Tensor, cfg: SampleConfig, uniforms: torch.Tensor) -> torch.Tensor:
    """One token per row: the most probable at temperature 0, else the inverse-CDF draw of
    the row's own uniform number (``uniforms``, one per row) from the temperature-scaled
    distribution cut to its top-p nucleus."""
    if cfg.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / cfg.temperature, -1)
    if cfg.top_p < 1:
        sorted_p, order = probs.sort(-1, descending=True)
        outside = sorted_p.cumsum(-1) - sorted_p >= cfg.top_p  # the nucleus keeps the token that crosses top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(outside, 0.0))
    cdf = probs.cumsum(-1)
    drawn = torch.searchsorted(cdf, (uniforms.to(cdf.device) * cdf[:, -1])[:, None]).squeeze(1)
    return drawn.clamp(max=probs.shape[-1] - 1)


def sample_rows(lm: models.LoadedModel, rows: list[list[int]], seeds: list[int], cfg: SampleConfig) -> list[str]:
    """One completion per prompt row (token ids), decoded without special tokens, in one
    left-padded batch with a key-value cache. Row i's random numbers (one per token) come
    from a generator seeded ``seeds[i]``, drawn before the first step."""
    uniforms = torch.stack([torch.rand(cfg.max_tokens, generator=torch.Generator().manual_seed(seed))
                            for seed in seeds])
    ids, mask = lm.left_padded(rows)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    eos, pad = _eos_ids(lm), lm.tokenizer.pad_token_id
    done = torch.zeros(len(rows), dtype=torch.bool, device=lm.device)
    out_tokens: list[torch.Tensor] = []
    cache_arg, cache = models.cache_argument(), None
    with torch.inference_mode():
        step_ids = ids
        for step in range(cfg.max_tokens):
            out = lm.model(input_ids=step_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                           logits_to_keep=1, **({cache_arg: cache} if cache is not None else {}))
            cache = models.cache_of(out)
            token = _next_tokens(out.logits[:, -1], cfg, uniforms[:, step]).masked_fill(done, pad)
            out_tokens.append(token)
            done |= torch.isin(token, eos)
            if bool(done.all()):
                break
            step_ids = token[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
    generated = torch.stack(out_tokens, dim=1).tolist() if out_tokens else [[] for _ in rows]
    ends_with = set(eos.tolist())
    answers = []
    for row in generated:
        ends = [i for i, t in enumerate(row) if t in ends_with]
        answers.append(lm.tokenizer.decode(row[: ends[0]] if ends else row, skip_special_tokens=True).strip())
    return answers


def generate(lm: models.LoadedModel, messages: list[dict], n: int, cfg: SampleConfig, seed: int) -> list[str]:
    """``n`` completions of one conversation (rows seeded ``seed``, ``seed + 1``, …)."""
    prompt = lm.chat_ids(messages, add_generation_prompt=True)
    return sample_rows(lm, [prompt] * n, [seed + i for i in range(n)], cfg)


def sample_key(model_name: str, adapter: Path | None, messages: list[dict], cfg: SampleConfig,
               intervention=None) -> str:
    edit = {"intervention": intervention.key} if intervention is not None else {}
    return cache_key(stage="sample", **models.identity(model_name, cfg.dtype, adapter=adapter),
                     messages=messages, config=cfg, sampler=SAMPLER, **edit)


def _sample_missing(lm: models.LoadedModel, prompts: dict[str, list[int]], wanted: dict[str, int], cfg: SampleConfig,
                    label: str, store_answers) -> None:
    """Sample ``wanted[prompt]`` answers for every prompt, ``cfg.batch_size`` rows per
    forward pass (rows sorted by prompt length, so little of a batch is padding), and
    hand each prompt's answers to ``store_answers`` as soon as they are all drawn."""
    todo = sorted(((p, i) for p, n in wanted.items() for i in range(n)), key=lambda r: (len(prompts[r[0]]), r))
    drawn: dict[str, dict[int, str]] = {p: {} for p in wanted}
    for start in tqdm(range(0, len(todo), cfg.batch_size), desc=f"sample {label}", unit="batch"):
        chunk = todo[start:start + cfg.batch_size]
        answers = sample_rows(lm, [prompts[p] for p, _ in chunk], [row_seed(cfg, p, i) for p, i in chunk], cfg)
        for (p, i), answer in zip(chunk, answers):
            drawn[p][i] = answer
            if len(drawn[p]) == wanted[p]:
                store_answers(p, [drawn[p][k] for k in range(wanted[p])])


def _stored(store: RunStore, stage: str, key: str, count: int) -> list[str] | None:
    """A question's stored answers, or None when absent, damaged, or not ``count`` of them."""
    answers = store.get(stage, key)
    if answers is not None and len(answers) != count:
        store.warn_damaged(stage, key, f"{len(answers)} answers stored, {count} expected")
        return None
    return answers


def sample_answers(model_name: str, questions: list[str], cfg: SampleConfig, adapter: Path | None = None,
                   store: RunStore | None = None, label: str | None = None, intervention=None) -> pd.DataFrame:
    """One row per sample: model label, question index and text, sample index, answer.

    ``intervention`` (e.g. ``interp.activations.Ablation``) has a ``key`` for the cache
    and an ``attach(lm)`` context that edits the model's forward passes while sampling."""
    from .remote import is_api_model
    from .remote import sample_answers as sample_api

    if is_api_model(model_name):
        if intervention is not None:
            raise ValueError(f"model '{model_name}': an API model cannot be edited (interventions are local only)")
        return sample_api(model_name, questions, cfg, adapter, store, label)
    store = store or RunStore()
    label = label or model_name
    keys = {q: sample_key(model_name, adapter, [{"role": "user", "content": q}], cfg, intervention) for q in questions}
    found = {q: _stored(store, "samples", keys[q], cfg.samples_per_question) for q in dict.fromkeys(questions)}
    missing = [q for q, answers in found.items() if answers is None]
    if missing:
        group = cache_key(stage="sample-lock", **models.identity(model_name, cfg.dtype, adapter=adapter))
        with store.lock(f"sample-{group}"):  # another job sampling this model: wait, then reuse its answers
            _sample_locked(model_name, adapter, cfg, store, label, intervention, keys, found)
    rows = []
    for q_index, question in enumerate(questions):
        answers = found[question]
        rows += [{"model": label, "question_id": q_index, "question": question, "sample": i, "answer": a}
                 for i, a in enumerate(answers)]
    return pd.DataFrame(rows)


def _sample_locked(model_name: str, adapter, cfg: SampleConfig, store: RunStore, label: str, intervention,
                   keys: dict, found: dict) -> None:
    for q in [q for q, answers in found.items() if answers is None]:
        found[q] = _stored(store, "samples", keys[q], cfg.samples_per_question)
    missing = [q for q, answers in found.items() if answers is None]
    if missing:
        lm = models.load(model_name, adapter=adapter, dtype=models.working_dtype(cfg.dtype))
        prompts = {q: lm.chat_ids([{"role": "user", "content": q}], add_generation_prompt=True) for q in missing}
        with intervention.attach(lm) if intervention is not None else contextlib.nullcontext():
            _sample_missing(lm, prompts, {q: cfg.samples_per_question for q in missing}, cfg, label,
                            lambda q, answers: found.__setitem__(q, store.put("samples", keys[q], answers)))


def answer_each(model_name: str, prompts: list[str], cfg: SampleConfig, store: RunStore | None = None,
                label: str | None = None) -> list[str]:
    """One answer per prompt, for building datasets from a model's own answers
    (self-distillation, a corpus). Each answer is cached on its own, so a longer prompt
    list reuses the answers already made. An API model answers through its client
    (``remote.sample_answers``, one sample per prompt, cached the same way)."""
    from .remote import is_api_model
    from .remote import sample_answers as sample_api

    if is_api_model(model_name):
        one = cfg.model_copy(update={"samples_per_question": 1})
        return sample_api(model_name, prompts, one, None, store, label)["answer"].tolist()
    store = store or RunStore()
    keys = {p: cache_key(stage="answer_each", **models.identity(model_name, cfg.dtype), prompt=p,
                         config=cfg, sampler=SAMPLER) for p in prompts}
    found = {p: store.get("answers", keys[p]) for p in dict.fromkeys(prompts)}
    missing = [p for p, answer in found.items() if answer is None]
    if missing:
        lm = models.load(model_name, dtype=models.working_dtype(cfg.dtype))
        ids = {p: lm.chat_ids([{"role": "user", "content": p}], add_generation_prompt=True) for p in missing}
        _sample_missing(lm, ids, {p: 1 for p in missing}, cfg, label or model_name,
                        lambda p, answers: found.__setitem__(p, store.put("answers", keys[p], answers[0])))
    return [found[p] for p in prompts]
