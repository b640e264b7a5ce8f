"""Sampling answers: N per question at temperature 1, many sequences per forward pass.

Each question's samples are cached under a key made of the model (and adapter), the
question, and every sampling setting, so a sample is identified by (model, prompt,
settings, sample index) and reruns reuse it. The random seed is derived from the
question and the batch's position, so a question's samples do not depend on which
other questions were asked in the same run.
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
from .store import RunStore, cache_key, read_json, write_json


def generate(lm: models.LoadedModel, messages: list[dict], n: int, cfg: SampleConfig, seed: int) -> list[str]:
    """``n`` sampled completions of one conversation, decoded without special tokens."""
    prompt = torch.tensor([lm.chat_ids(messages, add_generation_prompt=True)], device=lm.device)
    torch.manual_seed(seed)
    greedy = cfg.temperature == 0
    with torch.inference_mode():
        out = lm.model.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), num_return_sequences=n,
            do_sample=not greedy, temperature=None if greedy else cfg.temperature,
            top_p=None if greedy else cfg.top_p, top_k=None, max_new_tokens=cfg.max_tokens,
            pad_token_id=lm.tokenizer.pad_token_id)
    return [lm.tokenizer.decode(row[prompt.shape[1]:], skip_special_tokens=True).strip() for row in out]


def sample_key(model_name: str, adapter: Path | None, messages: list[dict], cfg: SampleConfig,
               intervention=None) -> str:
    # Unedited samples keep the keys they had before interventions existed.
    edit = {"intervention": intervention.key} if intervention is not None else {}
    return cache_key(stage="sample", **models.identity(model_name, cfg.dtype, adapter=adapter), messages=messages,
                     config=cfg, **edit)


def sample_answers(model_name: str, questions: list[str], cfg: SampleConfig, adapter: Path | None = None,
                   store: RunStore | None = None, label: str | None = None, intervention=None) -> pd.DataFrame:
    """One row per sample: model label, question index and text, sample index, answer.

    ``intervention`` (e.g. ``activations.Ablation``) has a ``key`` for the cache and an
    ``attach(lm)`` context that edits the model's forward passes while sampling."""
    store = store or RunStore()
    lm = None
    rows = []
    for q_index, question in enumerate(tqdm(questions, desc=f"sample {label or model_name}", unit="question")):
        messages = [{"role": "user", "content": question}]

        def compute() -> list[str]:
            nonlocal lm
            lm = lm or models.load(model_name, adapter=adapter, dtype=models.working_dtype(cfg.dtype))
            answers: list[str] = []
            base_seed = cfg.seed * 1_000_003 + zlib.crc32(question.encode())
            with intervention.attach(lm) if intervention is not None else contextlib.nullcontext():
                for start in range(0, cfg.samples_per_question, cfg.batch_size):
                    n = min(cfg.batch_size, cfg.samples_per_question - start)
                    answers += generate(lm, messages, n, cfg, seed=base_seed + start)
            return answers

        answers = store.cached("samples", sample_key(model_name, adapter, messages, cfg, intervention), compute)
        rows += [{"model": label or model_name, "question_id": q_index, "question": question,
                  "sample": i, "answer": a} for i, a in enumerate(answers)]
    return pd.DataFrame(rows)


def answer_each(model_name: str, prompts: list[str], cfg: SampleConfig, store: RunStore | None = None,
                label: str | None = None) -> list[str]:
    """One answer per prompt, many prompts per forward pass (left-padded), for building
    datasets from a model's own answers (self-distillation). Each answer is cached on
    its own, so a longer prompt list reuses the answers already made."""
    store = store or RunStore()
    keys = [cache_key(stage="answer_each", **models.identity(model_name, cfg.dtype), prompt=p, config=cfg)
            for p in prompts]
    todo = [i for i, k in enumerate(keys) if not store.path("answers", k).exists()]
    if todo:
        lm = models.load(model_name, dtype=models.working_dtype(cfg.dtype))
        tok = lm.tokenizer
        for start in tqdm(range(0, len(todo), cfg.batch_size), desc=f"answer {label or model_name}", unit="batch"):
            chunk = todo[start:start + cfg.batch_size]
            rows = [lm.chat_ids([{"role": "user", "content": prompts[i]}], add_generation_prompt=True) for i in chunk]
            ids, mask = lm.left_padded(rows)
            width = ids.shape[1]
            torch.manual_seed(cfg.seed * 1_000_003 + zlib.crc32(prompts[chunk[0]].encode()))
            greedy = cfg.temperature == 0
            with torch.inference_mode():
                out = lm.model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=not greedy,
                    temperature=None if greedy else cfg.temperature, top_p=None if greedy else cfg.top_p,
                    top_k=None, max_new_tokens=cfg.max_tokens, pad_token_id=tok.pad_token_id)
            for i, row in zip(chunk, out):
                write_json(store.path("answers", keys[i]), tok.decode(row[width:], skip_special_tokens=True).strip())
    return [read_json(store.path("answers", k)) for k in keys]
