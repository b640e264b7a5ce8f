"""What every benchmark shares: timing, this machine's measured matmul throughput, and
the FLOP estimates that turn a rate into a share of it.

A benchmark compares, in one run, the project's path with what a user would pick
instead, and prints the ratio; the achieved FLOP/s is set against what a plain float32
matmul reaches here (``matmul_flops``), so a reader can see how far from this
machine's limit each path is.
"""

from __future__ import annotations

import resource
import time
from typing import Any, Callable

import torch


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def matmul_flops(size: int = 2048, repeats: int = 8, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a square matmul with torch's threads: the practical limit of a
    compute-bound kernel on this machine (best of ``repeats``)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b)[1] for _ in range(repeats))
    return 2 * size**3 / best


def parameters(model: torch.nn.Module, trainable: bool = False) -> int:
    """Parameters that take part in every token's matmuls (embeddings excluded, since a
    lookup is no matmul; a tied output head is counted once, as the head)."""
    skip = {id(p) for name, m in model.named_modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    head = model.get_output_embeddings().weight if hasattr(model, "get_output_embeddings") else None
    total = sum(p.numel() for p in model.parameters() if id(p) not in skip and (p.requires_grad or not trainable))
    if head is not None and id(head) in skip and not trainable:
        total += head.numel()
    return total


def forward_flops(params: int, tokens: int) -> float:
    """2 FLOP per parameter per token: the matmuls of a forward pass (attention over
    the context is left out, small at these lengths)."""
    return 2.0 * params * tokens


def lora_training_flops(params: int, tokens: int) -> float:
    """A LoRA step: the forward pass (2 per parameter and token) and the backward pass
    through the frozen weights to the adapters (2 more); the adapters' own weight
    gradients are negligible."""
    return 4.0 * params * tokens


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def row(name: str, value: float, unit: str, target: str = "", ok: bool | None = None) -> str:
    mark = "" if ok is None else ("" if ok else "   MISSED")
    return f"{name:52s} {value:12.2f}  {unit:18s} {target}{mark}"
