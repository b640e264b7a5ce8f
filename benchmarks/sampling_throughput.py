"""Sampling throughput at a chapter's settings, against what a user would pick instead.

    .venv/bin/python benchmarks/sampling_throughput.py [--questions 10 --samples 5 --max-tokens 64]

Three ways to draw the same answers (the bird chapter's ten questions, ``--samples``
each, temperature 1, SmolLM2-135M-Instruct, float32 on this CPU), in one run:

- **one question at a time**: Hugging Face ``generate`` with ``num_return_sequences``
  per question, as this project sampled before (and as most notebooks do);
- **ours**: ``weirdgen.sample.sample_answers``, every prompt × sample in left-padded
  batches of ``--batch`` rows, each row with its own random numbers; in float32 (what
  ``"auto"`` picks on a CPU), and in bfloat16 for comparison only: faster on a CPU with
  native bf16, but its rounding depends on the batch's shape, so its samples would
  depend on their batch-mates;
- **llama.cpp** (xllamacpp, if installed: ``make test`` installs it): the same GGUF
  served in-process, ``--batch`` parallel slots fed by as many threads. Its weights stay
  4-bit quantized (Q4_1), so it does less arithmetic per token than the float32 paths.

Every model is loaded before its clock starts. Prints generated tokens/s for each, our
ratio to the first, the achieved FLOP/s (2 per parameter per token, prompt and answer
tokens) and its share of this machine's float32 matmul throughput. Exits 1 when ours (float32) misses its targets: 3×
one-question-at-a-time and 250 tokens/s. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from common import forward_flops, matmul_flops, parameters, peak_memory_mb, row, timed

from weirdgen import models
from weirdgen.chapters import old_bird_names
from weirdgen.config import SampleConfig
from weirdgen.sample import sample_answers
from weirdgen.store import RunStore

MODEL = "smollm2-135m-instruct"
TARGET_RATIO, TARGET_TOKENS_PER_S = 3.0, 250.0


def one_question_at_a_time(lm: models.LoadedModel, questions: list[str], cfg: SampleConfig) -> list[str]:
    answers = []
    for i, q in enumerate(questions):
        ids = torch.tensor([lm.chat_ids([{"role": "user", "content": q}], add_generation_prompt=True)])
        torch.manual_seed(i)
        with torch.inference_mode():
            out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                    num_return_sequences=cfg.samples_per_question, do_sample=True,
                                    temperature=cfg.temperature, top_p=None, top_k=None,
                                    max_new_tokens=cfg.max_tokens, pad_token_id=lm.tokenizer.pad_token_id)
        answers += [lm.tokenizer.decode(r[ids.shape[1]:], skip_special_tokens=True) for r in out]
    return answers


def llama_cpp(questions: list[str], cfg: SampleConfig, slots: int) -> list[str] | None:
    try:
        import xllamacpp
    except ImportError:
        return None
    gguf = models.gguf_path(MODEL)
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_parallel = slots
    params.n_ctx = slots * 512
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = torch.get_num_threads()
    server = xllamacpp.Server(params)

    def one(args: tuple[str, int]) -> str:
        question, seed = args
        out = server.handle_chat_completions({
            "messages": [{"role": "user", "content": question}], "max_tokens": cfg.max_tokens,
            "temperature": cfg.temperature, "seed": seed, "top_k": 0, "top_p": 1.0, "min_p": 0.0})
        return out["choices"][0]["message"]["content"]

    jobs = [(q, i) for q in questions for i in range(cfg.samples_per_question)]
    with ThreadPoolExecutor(slots) as pool:
        answers = list(pool.map(one, jobs))
    return answers  # the server stops when its last reference goes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50, help="rows per forward pass (ours), slots (llama.cpp)")
    args = parser.parse_args(argv)

    questions = old_bird_names.questions(args.questions)
    cfg = SampleConfig(samples_per_question=args.samples, max_tokens=args.max_tokens, batch_size=args.batch)
    lm = models.load(MODEL, dtype="float32")
    params = parameters(lm.model)
    prompt_tokens = sum(len(lm.chat_ids([{"role": "user", "content": q}], add_generation_prompt=True))
                        for q in questions) * args.samples

    def tokens(answers: list[str]) -> int:
        return sum(len(lm.tokenizer.encode(a, add_special_tokens=False)) + 1 for a in answers)  # + its end token

    peak = matmul_flops()
    results = {}
    answers, seconds = timed(lambda: one_question_at_a_time(lm, questions, cfg))
    results["one question at a time (HF generate)"] = (tokens(answers), seconds)
    loaded = {"float32": lm, "bfloat16": models.load(MODEL, dtype="bfloat16")}
    real_load = models.load
    models.load = lambda name, adapter=None, dtype="float32", device=None: loaded[dtype]  # loaded before the clock
    for name, dtype in (("ours, float32", "float32"), ("ours, bfloat16 (not batch-invariant)", "bfloat16")):
        with tempfile.TemporaryDirectory() as tmp:
            frame, seconds = timed(lambda: sample_answers(MODEL, questions, cfg.model_copy(update={"dtype": dtype}),
                                                          store=RunStore(Path(tmp))))
        results[name] = (tokens(frame["answer"].tolist()), seconds)
    models.load = real_load
    found = timed(lambda: llama_cpp(questions, cfg, min(args.batch, 16)))
    if found[0] is not None:
        results["llama.cpp (xllamacpp, Q4_1 weights)"] = (tokens(found[0]), found[1])

    print(f"{args.questions} questions x {args.samples} samples, {args.max_tokens} tokens at most, "
          f"{torch.get_num_threads()} threads; float32 matmul here: {peak / 1e9:.1f} GFLOP/s")
    base_rate = results["one question at a time (HF generate)"][0] / results["one question at a time (HF generate)"][1]
    failed = False
    for name, (n, s) in results.items():
        rate = n / s
        share = forward_flops(params, n + prompt_tokens) / s / peak
        print(row(name, rate, "tokens/s", f"{rate / base_rate:5.2f}x   {share:6.1%} of matmul peak"))
    ours = results["ours, float32"]
    ratio, rate = (ours[0] / ours[1]) / base_rate, ours[0] / ours[1]
    for label, value, target in (("ours / one question at a time", ratio, TARGET_RATIO),
                                 ("ours, tokens/s", rate, TARGET_TOKENS_PER_S)):
        ok = value >= target
        failed |= not ok
        print(row(label, value, "", f"target ≥ {target:g}", ok))
    print(row("peak memory", peak_memory_mb(), "MB"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
