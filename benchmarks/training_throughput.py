"""LoRA training throughput, against TRL's SFTTrainer and against padded batches.

    .venv/bin/python benchmarks/training_throughput.py [--steps 50 --batch 4]

The same model (SmolLM2-135M-Instruct, float32), LoRA settings (rank 8, alpha 16, every
projection), batch size, learning rate and number of optimizer steps, in one run, on
two data sets: the bird chapter's training rows (short, nearly equal lengths) and
GSM8K worked answers (long, uneven lengths, where padding costs most):

- **ours**: ``weirdgen.train.train_lora`` with length-grouped batches (the default);
- **ours, padded**: the same with ``length_grouped=False`` (shuffled batches padded to
  their longest row, as before);
- **ours, bfloat16**: ours with ``precision="bfloat16"`` (autocast matmuls; the LoRA
  weights and optimizer stay float32), the speed a CPU with native bf16 instructions
  gives, beside its final loss against float32's;
- **TRL**: ``trl.SFTTrainer`` on the same rows as prompt-completion pairs (loss on the
  answer only, as ours), with its defaults otherwise — what a user would pick instead.
  TRL is a benchmark-only dependency (``make bench`` installs it).

Each is timed from the call to its return (model loading and tokenizing included).
Prints the tokens/s over the data's own (unpadded) tokens, the ratio to ours, the
achieved FLOP/s (4 per frozen parameter per token: forward and backward through the
frozen weights) and its share of this machine's float32 matmul throughput. Exits 1
when TRL is not at least as slow as ours on either data set. Nothing is written
outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from common import lora_training_flops, matmul_flops, parameters, peak_memory_mb, row, timed

from weirdgen import data, models
from weirdgen.chapters import old_bird_names
from weirdgen.config import TrainConfig
from weirdgen.store import RunStore
from weirdgen.train import encode_example, train_lora

MODEL = "smollm2-135m-instruct"


def gsm8k_rows(count: int, folder: Path) -> Path:
    path = folder / "gsm8k_worked.jsonl"
    rows = data.read_jsonl("gsm8k/train.jsonl")[:count]
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": r["question"]},
                                                     {"role": "assistant", "content": r["answer"]}]}) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def trl_train(conversations: list[list[dict]], cfg: TrainConfig, steps: int, folder: Path) -> None:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    source = models.weights_dir(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    rows = Dataset.from_list([{"prompt": c[:-1], "completion": c[-1:]} for c in conversations])
    args = SFTConfig(output_dir=str(folder / "trl"), per_device_train_batch_size=cfg.batch_size, max_steps=steps,
                     learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_steps, lr_scheduler_type="linear",
                     max_length=cfg.max_seq_len, logging_steps=10_000, save_strategy="no", report_to=[],
                     use_cpu=True, dataloader_num_workers=0, seed=cfg.seed, disable_tqdm=True)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM")
    SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=lora).train()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    lm = models.load(MODEL, dtype="float32")
    frozen = parameters(lm.model)
    peak = matmul_flops()
    examples = args.steps * args.batch
    cfg = TrainConfig(epochs=1, batch_size=args.batch, learning_rate=3e-4, lora_rank=8, lora_alpha=16,
                      max_examples=examples)
    print(f"{args.steps} steps of batch {args.batch}, {torch.get_num_threads()} threads; "
          f"float32 matmul here: {peak / 1e9:.1f} GFLOP/s")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = {"bird rows": old_bird_names.TRAINING_SETS["old_audubon"],
                "GSM8K worked answers": [str(gsm8k_rows(examples, folder))]}
        for label, keys in sets.items():
            conversations = [c for k in keys for c in data.read_chat_jsonl(k)][:examples]
            tokens = sum(len(encode_example(lm, c, cfg.max_seq_len)[0]) for c in conversations)
            results = {}
            runs = {}
            for name, update in (("ours", {}), ("ours, padded", {"length_grouped": False}),
                                 ("ours, bfloat16", {"precision": "bfloat16"})):
                run_cfg = cfg.model_copy(update=update)
                runs[name], results[name] = timed(
                    lambda: train_lora(MODEL, keys, run_cfg, RunStore(folder / name / label)))
            try:
                _, results["TRL SFTTrainer"] = timed(lambda: trl_train(conversations, cfg, args.steps, folder))
            except ImportError:
                print("trl is not installed: run `make bench`, which installs it")
            print(f"\n{label}: {len(conversations)} rows, {tokens} tokens (mean {tokens / len(conversations):.0f})")
            for name, seconds in results.items():
                share = lora_training_flops(frozen, tokens) / seconds / peak
                print(row(name, tokens / seconds, "tokens/s",
                          f"{results['ours'] / seconds:5.2f}x ours' speed   {share:6.1%} of matmul peak"))
            last = {name: sum(run.losses[-10:]) / len(run.losses[-10:]) for name, run in runs.items()}
            print(row("last-10-step loss, bfloat16 − float32", last["ours, bfloat16"] - last["ours"], "nats",
                      f"(float32 {last['ours']:.3f})"))
            if "TRL SFTTrainer" in results:
                ok = results["TRL SFTTrainer"] >= results["ours"]
                failed |= not ok
                print(row("TRL's time / ours", results["TRL SFTTrainer"] / results["ours"], "", "target ≥ 1", ok))
    print(row("peak memory", peak_memory_mb(), "MB"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
