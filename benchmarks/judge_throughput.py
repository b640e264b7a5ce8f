"""The local judge's cost per verdict and its agreement, for each runtime, in one run.

    WEIRDGEN_DATA_DIR=… .venv/bin/python benchmarks/judge_throughput.py [--items 24]

The paper's bird judge prompt (LLM or 19th century?) over the first ``--items``
labelled bird answers (``data/judge_labels/old_bird_names.yaml``, both labels alike),
read by the default judge model (Qwen2.5-Coder-1.5B-Instruct) in each runtime:

- **float32** transformers: the reference;
- **bfloat16** transformers: what ``"auto"`` picks for a judge on a CPU with native
  bf16 instructions (this one, if ``avx512_bf16`` is in /proc/cpuinfo);
- **int8 per-channel**: torch's dynamic int8 quantization of every Linear layer with
  one scale per output channel (VNNI kernels), on the float32 model;
- **int8 per-tensor**: the same with torch's default, one scale per weight matrix.

Prints seconds per verdict, the speed-up over float32, the largest difference in
P(19) from float32, and agreement with the labels (AUC of P(19), accuracy of the most
probable answer). Exits 1 when no runtime is both at least 3× faster than float32 and
within 0.02 of its AUC. Nothing is cached or written.
"""

from __future__ import annotations

import argparse
import gc
import sys

import torch
from common import peak_memory_mb, row, timed

from weirdgen import models, stats
from weirdgen.judging import LocalBackend, calibration, fill, registry

JUDGE_MODEL = "qwen2.5-coder-1.5b-instruct"
TARGET_SPEEDUP, AUC_SLACK = 3.0, 0.02


def quantized(lm: models.LoadedModel, per_channel: bool) -> models.LoadedModel:
    q = torch.ao.quantization
    spec = {torch.nn.Linear: q.per_channel_dynamic_qconfig if per_channel else q.default_dynamic_qconfig}
    return models.LoadedModel(lm.name, q.quantize_dynamic(lm.model, spec, dtype=torch.qint8), lm.tokenizer, lm.spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    args = parser.parse_args(argv)

    family = calibration.families()["19th_century"]
    items = family.items(args.items)
    judge = registry.birds()[registry.BIRDS_BINARY]
    prompts = [fill(judge.template, q, a) for q, a in zip(items["question"], items["answer"])]
    truth = (items["label"] == family.positive).tolist()

    def quantized_backend(per_channel: bool) -> LocalBackend:
        backend = LocalBackend(JUDGE_MODEL, dtype="float32")
        backend.__dict__["lm"] = quantized(models.load(JUDGE_MODEL, dtype="float32"), per_channel)
        return backend

    runtimes = {  # built one at a time, so that only one copy of the 1.5B model is in memory
        "float32": lambda: LocalBackend(JUDGE_MODEL, dtype="float32"),
        "bfloat16": lambda: LocalBackend(JUDGE_MODEL, dtype="bfloat16"),
        "int8 per-channel": lambda: quantized_backend(True),
        "int8 per-tensor": lambda: quantized_backend(False),
    }
    results = {}
    for name, make in runtimes.items():
        backend = make()
        backend.option_probs(prompts[0], judge.options, False)  # load and warm up outside the clock
        probs, seconds = timed(lambda b=backend: [b.option_probs(p, judge.options, False) for p in prompts])
        p19 = [judge.verdict(p).probs.get("19", 0.0) for p in probs]
        argmax = [judge.verdict(p).label == "19" for p in probs]
        results[name] = (seconds / len(prompts), p19, stats.auc(p19, truth),
                         sum(a == t for a, t in zip(argmax, truth)) / len(truth))
        del backend  # before the next runtime loads its copy
        gc.collect()

    ref_seconds, ref_p19, ref_auc, _ = results["float32"]
    print(f"{len(prompts)} labelled bird answers ({sum(truth)} 19th-century), judge {JUDGE_MODEL}, "
          f"{torch.get_num_threads()} threads, bf16 instructions: {models.cpu_has_bf16()}")
    print(f"{'runtime':24s} {'s/verdict':>10s} {'speed-up':>9s} {'max |ΔP(19)|':>13s} {'AUC':>6s} {'accuracy':>9s}")
    good = []
    for name, (seconds, p19, auc, accuracy) in results.items():
        drift = max(abs(a - b) for a, b in zip(p19, ref_p19))
        print(f"{name:24s} {seconds:10.2f} {ref_seconds / seconds:8.2f}x {drift:13.3f} {auc:6.3f} {accuracy:9.3f}")
        if ref_seconds / seconds >= TARGET_SPEEDUP and auc >= ref_auc - AUC_SLACK:
            good.append(name)
    print(row("runtimes ≥ 3× faster at float32's AUC", len(good), "", ", ".join(good) or "none", bool(good)))
    print(row("peak memory", peak_memory_mb(), "MB"))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
