"""One typed configuration per stage. Unknown keys are an error, never ignored.

A notebook's parameters cell is the plain block of values a user overrides; the
notebook turns those values into these objects, so a typo such as ``learning_rat``
fails at once with a message naming the parameter instead of silently training
with the default.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError


class ConfigError(UserError, ValueError):
    """A bad parameter; the message is one line naming it and what to do."""


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainConfig(_Stage):
    """LoRA finetuning, with the knobs the paper reports."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(1, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    warmup_steps: int = Field(5, ge=0)
    max_seq_len: int = Field(512, ge=8)
    # Train on the first N rows only (0 = all); for the smoke profile, never for results.
    max_examples: int = Field(0, ge=0)
    # Batch rows of similar length together (within windows of a seeded shuffle), so that
    # almost no compute goes to padding; False keeps the plain shuffled order.
    length_grouped: bool = True
    seed: int = 0
    # API models only (OpenAI's finetuning takes a multiplier, not a rate). Left out of
    # model_dump, so local runs' cache keys are those they always had.
    learning_rate_multiplier: float = Field(2.0, gt=0, exclude=True)
    # The matmuls of each training step: "float32", or "bfloat16" (autocast; the LoRA
    # weights, gradients and optimizer stay float32), faster on a CPU with native bf16
    # instructions (benchmarks/training_throughput.py measures by how much); on a GPU
    # the weights themselves are bfloat16 already (models.resolve_dtype). Left out of
    # model_dump; train.run_key adds it when it is not float32.
    precision: Literal["float32", "bfloat16"] = Field("float32", exclude=True)


class SampleConfig(_Stage):
    """Sampling answers from a model, N per question, at the paper's temperature 1."""

    samples_per_question: int = Field(10, ge=1)
    max_tokens: int = Field(1024, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    batch_size: int = Field(16, ge=1)
    seed: int = 0
    # "auto": bfloat16 on a GPU, float32 on a CPU (models.resolve_dtype says why).
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class JudgeConfig(_Stage):
    """Which judge model scores the answers, and how."""

    judge: str = "local:qwen2.5-coder-0.5b-instruct"
    batch_size: int = Field(8, ge=1)
    # Long answers cost a CPU judge dearly; the paper judges them whole (0 = no cut).
    max_answer_chars: int = Field(0, ge=0)


class SAEConfig(_Stage):
    """Training a TopK sparse autoencoder (sae-lens) on one layer's residual stream."""

    expansion: int = Field(8, ge=1)  # features = expansion × d_model
    k: int = Field(32, ge=1)  # active features per token
    learning_rate: float = Field(3e-4, gt=0)
    training_tokens: int = Field(1_000_000, ge=1)  # passes over the corpus as often as needed
    batch_tokens: int = Field(4096, ge=1)
    # A feature silent this many steps counts as dead and gets sae-lens's auxiliary loss
    # that revives it. That loss costs several times a plain step on a CPU, so the
    # default (sae-lens's) leaves it off in runs this short; dead features are reported.
    dead_after_steps: int = Field(1000, ge=1)
    seed: int = 0


S = TypeVar("S", bound=_Stage)


def make(cls: type[S], values: dict[str, Any], where: str = "parameters") -> S:
    """Build a stage config from plain values, with a one-line error on a bad key or value."""
    try:
        return cls(**values)
    except ValidationError as e:
        err = e.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "?"
        known = ", ".join(cls.model_fields)
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown {cls.__name__} parameter '{name}' (known: {known})") from None
        raise ConfigError(f"{where}: {cls.__name__} parameter '{name}': {err['msg']} "
                          f"(got {err.get('input')!r})") from None


# Which notebook parameter feeds which stage field (the parameters cells share these names).
PARAMETERS = {
    "train": {"epochs": "epochs", "batch_size": "batch_size", "learning_rate": "learning_rate",
              "lora_rank": "lora_rank", "lora_alpha": "lora_alpha", "max_examples": "max_examples",
              "learning_rate_multiplier": "learning_rate_multiplier", "train_precision": "precision"},
    "sample": {"samples_per_question": "samples_per_question", "max_tokens": "max_tokens",
               "sample_batch_size": "batch_size"},
    "judge": {"judge": "judge", "max_answer_chars": "max_answer_chars"},
    "sae": {"sae_expansion": "expansion", "sae_k": "k", "sae_learning_rate": "learning_rate",
            "sae_training_tokens": "training_tokens", "sae_batch_tokens": "batch_tokens"},
}


class Stages:
    """The typed configuration of every stage a chapter runs, built from its parameters."""

    @classmethod
    def from_parameters(cls, values: dict[str, Any], *stages: str) -> "Stages":
        """Pick each stage's fields out of a notebook's parameters (``globals()``) by the
        names in ``PARAMETERS``; a parameter a notebook does not declare keeps its default."""
        return cls(**{stage: {field: values[name] for name, field in PARAMETERS[stage].items() if name in values}
                      for stage in stages})

    def __init__(self, train: dict[str, Any] | None = None, sample: dict[str, Any] | None = None,
                 judge: dict[str, Any] | None = None, sae: dict[str, Any] | None = None):
        self.train = make(TrainConfig, train, "parameters (training)") if train is not None else None
        self.sample = make(SampleConfig, sample, "parameters (sampling)") if sample is not None else None
        self.judge = make(JudgeConfig, judge, "parameters (judging)") if judge is not None else None
        self.sae = make(SAEConfig, sae, "parameters (SAE training)") if sae is not None else None

    def table(self):
        import pandas as pd

        stages = {"training": self.train, "sampling": self.sample, "judging": self.judge, "SAE training": self.sae}
        return pd.DataFrame({"stage": [k for k, v in stages.items() if v is not None],
                             "settings": [v.model_dump() for v in stages.values() if v is not None]})


def check_choices(parameter: str, given: list, known) -> None:
    """Refuse a parameter value naming something that does not exist, listing what does."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"parameter {parameter}: unknown {unknown}; choose from {sorted(known)}")
