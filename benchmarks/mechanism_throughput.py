"""Throughput and memory of chapter 07's hot paths on the default model, against targets.

    WEIRDGEN_DATA_DIR=… .venv/bin/python benchmarks/mechanism_throughput.py [--layer 18]

Measures, on this machine: residuals of every token up to one layer (the SAE corpus),
last-token residuals after every layer (the year shift), TopK SAE training with
sae-lens, and sampling under an ablation hook against sampling without. Prints one row
per stage and exits 1 when a stage misses its target. Nothing is cached or written.
The targets are about 80% of what this script measured on a 2-core CPU when the chapter
was written (541 tokens/s, 3.4 prompts/s, 3236 tokens/s, 0.9×, 1.8 GB peak), so a
miss means a real slowdown, not noise. The chapter's first pass on the cpu profile
took 1161 s with a 4.0 GB peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

from weirdgen import data, models
from weirdgen.config import SAEConfig, SampleConfig
from weirdgen.interp import activations, sae
from weirdgen.sample import generate

MODEL = "smollm2-135m-instruct"
# stage -> (unit, minimum rate on a 2-core CPU)
TARGETS = {
    "corpus residuals (to one layer)": ("tokens/s", 430.0),
    "last-token residuals (all layers)": ("prompts/s", 2.7),
    "SAE training (TopK, 8x)": ("tokens/s", 2600.0),
    "sampling with an ablation hook": ("× unedited speed", 0.7),
}
PEAK_MEMORY_MB = 6000.0


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=int, default=18)
    parser.add_argument("--conversations", type=int, default=96)
    args = parser.parse_args(argv)

    lm = models.load(MODEL)
    rows = [json.loads(line) for line in data.fetch("gsm8k/train.jsonl").read_text().splitlines()[:args.conversations]]
    convs = [[{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}] for r in rows]
    results = {}

    corpus, seconds = timed(lambda: activations.token_residuals(lm, convs, args.layer))
    results["corpus residuals (to one layer)"] = len(corpus["acts"]) / seconds

    prompts = [f"Today is 2027-03-0{i % 9 + 1}. {r['question']}" for i, r in enumerate(rows)]
    layers = list(range(lm.model.config.num_hidden_layers))
    _, seconds = timed(lambda: activations.last_token_residuals(lm, prompts, layers))
    results["last-token residuals (all layers)"] = len(prompts) / seconds

    tokens = 120_000
    cfg = SAEConfig(expansion=8, k=32, learning_rate=3e-3, training_tokens=tokens, batch_tokens=4096)
    _, seconds = timed(lambda: sae.train_sae(corpus["acts"], cfg))
    results["SAE training (TopK, 8x)"] = tokens / seconds

    messages = [{"role": "user", "content": "Name an overly aggressive country."}]
    sample_cfg = SampleConfig(samples_per_question=12, max_tokens=16)
    edit = activations.Ablation.of("ten random directions", args.layer, torch.randn(10, lm.model.config.hidden_size))
    _, plain = timed(lambda: generate(lm, messages, 12, sample_cfg, seed=0))
    with edit.attach(lm):
        _, edited = timed(lambda: generate(lm, messages, 12, sample_cfg, seed=0))
    results["sampling with an ablation hook"] = plain / edited

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    failed = False
    print(f"{'stage':40s} {'measured':>12s} {'target':>10s}  unit")
    for stage, (unit, target) in TARGETS.items():
        ok = results[stage] >= target
        failed |= not ok
        print(f"{stage:40s} {results[stage]:12.1f} {target:10.1f}  {unit}{'' if ok else '   MISSED'}")
    ok = peak <= PEAK_MEMORY_MB
    failed |= not ok
    print(f"{'peak memory':40s} {peak:12.0f} {PEAK_MEMORY_MB:10.0f}  MB (at most){'' if ok else '   MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
