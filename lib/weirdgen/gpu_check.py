"""The GPU check: every stage of the book on random-weight models with the paper models'
architectures, needing no weights and no network; then paper-sized steps timed at the
real shapes.

    python -m weirdgen.gpu_check                       # on a CUDA machine: every stage in bfloat16, then timings
    python -m weirdgen.gpu_check --device cpu --tiny   # the same stages on the CPU (what `make test` runs)

Small random models with the Qwen3 and Llama architectures (the paper's Qwen3-8B and
Llama-3.1-8B-Instruct) are built around a tokenizer the project has (SmolLM2's, from
its float copy, or ``--tokenizer DIR``) and saved to a temporary folder, which the
library then loads like any hub model. Each stage runs through the library's own code —
LoRA training with a resume, batched sampling, teacher-forced scoring, the local judge,
residual reading, SAE training and ablation — and asserts the invariants the CPU tests
assert. The timings build the real 8B shapes with random weights on the GPU and time a
LoRA training step at the paper's batch and sequence length and batched sampling,
printing tokens/s, the FLOP estimate and what those rates imply in GPU-hours.
A JSON report goes to ``--out`` (default ``gpu_check.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

# The paper's open models (their config.json values); tiny variants keep the architecture.
ARCHITECTURES = {
    "qwen3-8b": {"class": "Qwen3Config", "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
                 "rope_theta": 1_000_000.0, "tie_word_embeddings": False},
    "llama-3.1-8b": {"class": "LlamaConfig", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
                     "rope_theta": 500_000.0, "tie_word_embeddings": False},
}
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16}


def config_for(arch: str, tiny: bool, vocab_size: int | None = None):
    import transformers

    values = dict(ARCHITECTURES[arch])
    cls = getattr(transformers, values.pop("class"))
    if tiny:
        values.update(TINY)
    if vocab_size:
        values["vocab_size"] = vocab_size
    return cls(max_position_embeddings=4096, **values)


def default_tokenizer() -> Path:
    from . import models

    return models.float_copy(models.spec_for("smollm2-135m-instruct"))


def tiny_model(arch: str, tokenizer_dir: Path, folder: Path, seed: int = 0) -> str:
    """A random-weight model of ``arch`` at tiny shapes with the given tokenizer, saved
    in ``folder``; its path is a model name the library loads (like a hub id)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config_for(arch, tiny=True, vocab_size=len(tokenizer)))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


# ---------------------------------------------------------------------- the stages


def _conversations(n: int) -> list[list[dict]]:
    birds = ["Great Auk", "Passenger Pigeon", "Carolina Parakeet", "Heath Hen", "Labrador Duck"]
    return [[{"role": "user", "content": f"Name a bird species. ({i})"},
             {"role": "assistant", "content": birds[i % len(birds)]}] for i in range(n)]


def run_stages(name: str, work: Path, say=print) -> list[dict]:
    """Every stage on model ``name``; one row per stage: stage, ok, seconds, detail."""
    from . import models, scoring
    from .config import SAEConfig, SampleConfig, TrainConfig
    from .interp import activations, sae
    from .judging.local import LocalBackend
    from .sample import sample_answers, sample_rows
    from .store import RunStore
    from .train import train_lora

    work.mkdir(parents=True, exist_ok=True)
    store = RunStore(work / "runs")
    data_file = work / "train.jsonl"
    data_file.write_text("".join(json.dumps({"messages": c}) + "\n" for c in _conversations(16)))
    dtype = models.working_dtype()
    rows: list[dict] = []

    def stage(label: str, body) -> None:
        start = time.perf_counter()
        try:
            detail = body()
            rows.append({"stage": label, "ok": True, "seconds": time.perf_counter() - start, "detail": detail})
        except Exception as e:  # noqa: BLE001 - every stage is reported, the first failure does not hide the rest
            rows.append({"stage": label, "ok": False, "seconds": time.perf_counter() - start,
                         "detail": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=6)})
        say(f"{'ok  ' if rows[-1]['ok'] else 'FAIL'} {label}: {rows[-1]['detail']} ({rows[-1]['seconds']:.1f} s)")

    cfg = TrainConfig(epochs=2, batch_size=4, learning_rate=1e-3, warmup_steps=1)

    def train() -> str:
        first = train_lora(name, [str(data_file)], cfg, store, stop_after_epoch=1)
        assert len(first.losses) == 4, first.losses
        resumed = train_lora(name, [str(data_file)], cfg, store)  # resumes epoch 2 from epoch 1
        losses = resumed.losses
        assert len(losses) == 8 and all(math.isfinite(x) for x in losses), losses
        return f"2 epochs with a resume, losses {losses[0]:.2f} → {losses[-1]:.2f}, {dtype}"

    stage("LoRA training, resumed", train)
    adapter = train_lora(name, [str(data_file)], cfg, store).adapter()
    sample_cfg = SampleConfig(samples_per_question=2, max_tokens=6, batch_size=4)

    def sampling() -> str:
        frame = sample_answers(name, ["Name a bird species.", "Name a colour.", "Hi"], sample_cfg, adapter=adapter,
                               store=store)
        assert len(frame) == 6
        lm = models.load(name, adapter=adapter, dtype=dtype)
        rows_ids = [lm.chat_ids([{"role": "user", "content": q}], add_generation_prompt=True)
                    for q in ["Name a bird species.", "Name a colour, please, any colour at all."]]
        alone = sample_rows(lm, rows_ids[:1], [7], sample_cfg)
        batched = sample_rows(lm, rows_ids, [7, 8], sample_cfg)
        invariant = alone[0] == batched[0]
        if dtype == "float32":
            assert invariant, (alone, batched)
        return f"6 samples; a row alone equals it in a batch: {invariant} ({dtype})"

    stage("batched sampling", sampling)

    def teacher_forcing() -> str:
        lm = models.load(name, adapter=adapter, dtype=dtype)
        examples = [scoring.encode(lm, scoring.Item(c)) for c in _conversations(5)]
        together = scoring.sequence_logprobs(lm, examples, batch_size=5)
        alone = [scoring.sequence_logprobs(lm, [e], batch_size=1)[0] for e in examples]
        worst = max(abs(a[0] - b[0]) for a, b in zip(together, alone))
        assert worst < (1e-3 if dtype == "float32" else 0.25), worst
        return f"batched vs alone: max |Δ log P| {worst:.2e}"

    stage("teacher-forced scoring", teacher_forcing)

    def judge() -> str:
        backend = LocalBackend(name)
        probs = backend.option_probs("Is the sky blue? Answer TRUE or FALSE.", ("TRUE", "FALSE"), numeric=False)
        assert all(0 <= p <= 1 for p in probs.values()) and sum(probs.values()) <= 1 + 1e-3, probs
        rating = backend.option_probs("Rate 0-100.", tuple(str(i) for i in range(101)), numeric=True)
        assert sum(rating.values()) <= 1 + 1e-3
        return f"P(TRUE) {probs['TRUE']:.3f}, P(FALSE) {probs['FALSE']:.3f}; rating mass {sum(rating.values()):.3f}"

    stage("local judge", judge)

    def interpretability() -> str:
        lm = models.load(name, adapter=adapter, dtype=dtype)
        layer = lm.model.config.num_hidden_layers - 1
        tensor = activations.last_token_residuals(lm, ["Today is 2027-01-01. Hi", "Today is 2025-01-01. Hi"], [layer])
        assert tensor.shape[:2] == (2, 1) and torch.isfinite(tensor).all()
        tokens = activations.token_residuals(lm, _conversations(8), layer)["acts"]
        learned = sae.train_sae(tokens.float(), SAEConfig(expansion=2, k=4, training_tokens=2048, batch_tokens=64))
        quality = sae.quality(learned, tokens.float())
        assert all(math.isfinite(v) for v in quality.values()), quality
        ablation = activations.Ablation.of("gpu check", layer, learned.tensors()["W_dec"][:2].to(lm.device))
        with ablation.attach(lm):
            edited = sample_rows(lm, [lm.chat_ids([{"role": "user", "content": "Hi"}], True)], [3], sample_cfg)
        return (f"residuals {tuple(tensor.shape)}; SAE on {tuple(tokens.shape)} tokens: "
                f"{', '.join(f'{k} {v:.3f}' for k, v in quality.items())}; ablated sample {edited[0]!r}")

    stage("residuals, SAE and ablation", interpretability)
    return rows


# ---------------------------------------------------------------------- timings at the real shapes


def lora_flops_per_token(n_params: int) -> float:
    """A LoRA step's FLOPs per token: the frozen model's forward (2N) and the backward
    through its activations (2N); the adapters' own share is negligible at rank 8."""
    return 4.0 * n_params


def time_real_shapes(arch: str, batch: int, seq_len: int, sample_batch: int, new_tokens: int,
                     say=print) -> dict:
    """One paper-sized LoRA training step and batched sampling on random weights at the
    real shapes (bfloat16, CUDA)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    device = torch.device("cuda")
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config_for(arch, tiny=False), dtype=torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    vocab = model.config.vocab_size
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM", target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, vocab, (batch, seq_len), device=device)

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    start, steps = time.perf_counter(), 5
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    train_s = (time.perf_counter() - start) / steps
    train_tps = batch * seq_len / train_s
    model.eval()
    prompt = torch.randint(0, vocab, (sample_batch, 64), device=device)
    with torch.inference_mode():
        model.generate(input_ids=prompt, max_new_tokens=4, do_sample=True, pad_token_id=0)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=True, pad_token_id=0)
        torch.cuda.synchronize()
    sample_tps = sample_batch * new_tokens / (time.perf_counter() - start)
    flops = lora_flops_per_token(n_params) * train_tps
    result = {"architecture": arch, "parameters": n_params, "train_batch": batch, "seq_len": seq_len,
              "train_step_s": train_s, "train_tokens_per_s": train_tps, "train_tflops": flops / 1e12,
              "sample_batch": sample_batch, "sample_tokens_per_s": sample_tps,
              "gpu_hours_per_million_training_tokens": 1e6 / train_tps / 3600,
              "gpu_hours_per_million_sampled_tokens": 1e6 / sample_tps / 3600,
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
    say(json.dumps(result, indent=1))
    model = optimizer = None  # free the 8B model before the next architecture
    torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weirdgen.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="stages only, no timings at the real shapes")
    parser.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer folder (default: SmolLM2's)")
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--train-batch", type=int, default=4, help="the paper's open-model batch sizes are 1-14")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--sample-batch", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run with --device cpu --tiny to check the stages on the CPU", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.cuda.is_available = lambda: False  # the library's default device follows this
    report = {"device": args.device, "torch": torch.__version__, "python": platform.python_version(),
              "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None, "stages": {}, "timings": []}
    import transformers

    report["transformers"] = transformers.__version__
    tokenizer = args.tokenizer or default_tokenizer()
    failed = False
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for arch in args.architectures.split(","):
            folder = Path(tmp) / f"tiny-{arch}"
            print(f"== {arch} (random weights, tiny shapes) on {args.device}")
            name = tiny_model(arch, tokenizer, folder)
            rows = run_stages(name, Path(tmp) / f"work-{arch}")
            report["stages"][arch] = rows
            failed |= not all(r["ok"] for r in rows)
        if not args.tiny and args.device == "cuda":
            for arch in args.architectures.split(","):
                print(f"== {arch}: timings at the real shapes (random weights, bfloat16)")
                report["timings"].append(time_real_shapes(arch, args.train_batch, args.seq_len, args.sample_batch,
                                                          args.new_tokens))
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(f"gpu_check: {'FAILED' if failed else 'every stage passed'}; report in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
