"""The GPU check's stages on the CPU at tiny shapes: what a CUDA machine will run, minus
the timings at the real shapes (weirdgen.gpu_check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from weirdgen import gpu_check

pytestmark = pytest.mark.slow


def test_every_stage_passes_on_the_cpu_at_tiny_shapes(tmp_path):
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "weirdgen.gpu_check", "--device", "cpu", "--tiny", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["stages"]) == set(gpu_check.ARCHITECTURES)
    for arch, rows in report["stages"].items():
        assert [r["stage"] for r in rows] == ["LoRA training, resumed", "batched sampling", "teacher-forced scoring",
                                              "local judge", "residuals, SAE and ablation"], arch
        assert all(r["ok"] for r in rows), rows
    assert report["timings"] == []  # no timings without a GPU


def test_the_real_shapes_are_the_paper_models_and_the_flop_rule_is_4n():
    qwen = gpu_check.config_for("qwen3-8b", tiny=False)
    llama = gpu_check.config_for("llama-3.1-8b", tiny=False)
    assert (qwen.num_hidden_layers, qwen.hidden_size, qwen.vocab_size) == (36, 4096, 151936)
    assert (llama.num_hidden_layers, llama.intermediate_size, llama.vocab_size) == (32, 14336, 128256)
    assert gpu_check.lora_flops_per_token(8_000_000_000) == 3.2e10
    tiny = gpu_check.config_for("qwen3-8b", tiny=True, vocab_size=100)
    assert type(tiny) is type(qwen) and tiny.hidden_size == 64 and tiny.vocab_size == 100


def test_without_cuda_the_gpu_check_says_how_to_run_on_the_cpu(capsys, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--device", "cuda"]) == 2
    assert "--device cpu --tiny" in capsys.readouterr().err
