"""Choosing a judge backend from the ``judge`` parameter."""

from __future__ import annotations

from ..config import ConfigError, JudgeConfig
from .judges import Backend
from .local import LocalBackend


def backend_for(cfg: JudgeConfig) -> Backend:
    """``local:<model>`` runs a registered model here; ``openai:<model>`` calls an
    OpenAI-compatible API with the key (and base URL) from the environment. A missing
    key fails here, before any training or sampling starts."""
    kind, _, name = cfg.judge.partition(":")
    if kind == "local" and name:
        return LocalBackend(name)
    if kind == "openai" and name:
        from .openai import OpenAIBackend

        return OpenAIBackend.from_env(name)
    raise ConfigError(f"judge parameter '{cfg.judge}': expected local:<model name> or openai:<model name>")


