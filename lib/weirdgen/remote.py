"""A subject model behind an OpenAI-compatible API (``model: openai:<name>``): finetuning
jobs and sampling, through the shared client layer (``weirdgen.openai_client``).

Finetuning is idempotent and resumable, and never pays twice. The training file's name
carries the sha256 of its content, and its id goes into the run store the moment the
upload returns; the job's id likewise the moment creation returns. A run interrupted at
any point (kill -9 during the upload, the creation or the polling) finds on its next
start the stored ids, or else the file by its name and the job by its file, model,
hyperparameters and seed among the account's jobs, and resumes that job instead of
creating a second one. A failed or cancelled job is a one-line error naming its id and
the API's message.

Sampling draws ``n`` answers per request where the server supports it (else one request
per missing answer, each with its own seed), at the chapter's temperature, ``top_p``,
``max_tokens`` and seed, cached per question exactly like local samples; calls run on a
thread pool and are retried by the client layer.

Costs: ``estimate`` prices a chapter's training, sampling and judging from
``data/openai_prices.yaml`` (dated, with its source) before anything is paid for, and
``check_budget`` refuses a run estimated above the chapter's ``budget_usd``.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import data
from .config import ConfigError, SampleConfig, TrainConfig
from .errors import UserError
from .openai_client import APIError, Client
from .store import RunStore, cache_key

PREFIX = "openai:"
OPENAI_HOST = "api.openai.com"
TERMINAL = ("succeeded", "failed", "cancelled")
PRICES = Path(__file__).resolve().parents[2] / "data" / "openai_prices.yaml"


class FinetuneError(UserError, RuntimeError):
    """A finetuning job ended without a model (failed or cancelled)."""


def is_api_model(name: str) -> bool:
    return str(name).startswith(PREFIX)


def api_name(name: str) -> str:
    """``openai:gpt-4.1-2025-04-14`` -> ``gpt-4.1-2025-04-14``."""
    return str(name)[len(PREFIX):]


def client_for(name: str, **kwargs: Any) -> Client:
    return Client(f"model '{name}'", **kwargs)


def base_url() -> str:
    """The API's base URL as the client layer resolves it (without needing a key)."""
    import os

    from .openai_client import DEFAULT_BASE_URL

    return (os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def identity(name: str, adapter: str | None) -> dict:
    """What identifies an API model's outputs in a cache key: the model at its base URL
    and the fine-tuned model's id (None for the base model)."""
    return {"model": f"{name}@{base_url()}", "precision": "api", "adapter": adapter}


# ---------------------------------------------------------------------- training file


def training_file(data_keys: list, max_examples: int = 0) -> tuple[bytes, int]:
    """The chat JSONL the API trains on (one ``{"messages": …}`` per line, keys sorted so
    the same rows give the same bytes) and its row count."""
    conversations = [conv for key in data_keys for conv in data.read_chat_jsonl(key)]
    conversations = conversations[:max_examples] if max_examples else conversations
    lines = [json.dumps({"messages": conv}, ensure_ascii=False, sort_keys=True) for conv in conversations]
    return ("\n".join(lines) + "\n").encode("utf-8"), len(conversations)


def approx_tokens(text: str | bytes) -> int:
    """Tokens approximated as characters / 4 (a rule of thumb for English, not a
    tokenizer count); the estimate says so."""
    return max(1, len(text) // 4)


# ---------------------------------------------------------------------- finetuning


@dataclass(frozen=True)
class FinetunedModel:
    """A finished finetuning job: what ``train.TrainedAdapter`` is for a local run."""

    name: str  # the base model, "openai:…"
    job_id: str
    file_id: str
    model_id: str  # the fine-tuned model's name at the API
    epochs: int
    losses: list[float] = field(default_factory=list)  # train_loss of the job's metric events, by step

    @property
    def saved_epochs(self) -> list[int]:
        """Only the final model of a job is sampled (as ``train.TrainedAdapter.saved_epochs``)."""
        return [self.epochs]

    def snapshots(self) -> dict[int, str]:
        """A job keeps no snapshots during training (``train.TrainedAdapter.snapshots``)."""
        return {}

    def adapter(self, epoch: int | None = None) -> str:
        if epoch not in (None, self.epochs):
            raise ConfigError(f"model '{self.name}': only the final epoch of job {self.job_id} is sampled; "
                              "per-epoch models are local-model only")
        return self.model_id


def hyperparameters(cfg: TrainConfig) -> dict:
    return {"n_epochs": cfg.epochs, "batch_size": cfg.batch_size,
            "learning_rate_multiplier": cfg.learning_rate_multiplier}


def _matches(job: Any, file_id: str, model: str, hyper: dict, seed: int) -> bool:
    found = getattr(job, "hyperparameters", None)
    found = found.model_dump() if hasattr(found, "model_dump") else dict(found or {})
    same_hyper = all(found.get(k) in (v, str(v)) for k, v in hyper.items())
    return (job.training_file == file_id and job.model == model and same_hyper
            and getattr(job, "seed", seed) in (seed, None) and job.status not in ("failed", "cancelled"))


def _find_file(client: Client, filename: str) -> str | None:
    files = client.call(lambda raw: raw.files.list())
    for f in getattr(files, "data", files):
        if getattr(f, "filename", None) == filename and getattr(f, "status", "processed") != "error":
            return f.id
    return None


def _find_job(client: Client, file_id: str, model: str, hyper: dict, seed: int) -> str | None:
    jobs = client.call(lambda raw: raw.fine_tuning.jobs.list(limit=100))
    for job in getattr(jobs, "data", jobs):
        if _matches(job, file_id, model, hyper, seed):
            return job.id
    return None


def submit(name: str, data_keys: list, cfg: TrainConfig, suffix: str, store: RunStore | None = None,
           client: Client | None = None, say: Callable[[str], Any] = print) -> tuple[str, str]:
    """Upload the concatenated chat files and create their finetuning job for ``name``
    (``openai:…``), each found rather than made again (in the run store, then at the
    API), and each id stored the moment it exists; (file id, job id)."""
    store = store or RunStore()
    client = client or client_for(name)
    model = api_name(name)
    content, rows = training_file(data_keys, cfg.max_examples)
    sha = hashlib.sha256(content).hexdigest()
    filename = f"weirdgen-{sha[:16]}.jsonl"
    where = {"base_url": client.base_url, "training_file_sha256": sha}

    file_key = cache_key(stage="api_file", **where)
    stored = store.get("api_files", file_key, paid=True)
    if stored is None:
        file_id = _find_file(client, filename)
        if file_id is None:
            say(f"uploading {filename} ({rows} rows, {len(content)} bytes)")
            file_id = client.call(lambda raw: raw.files.create(file=(filename, content), purpose="fine-tune")).id
        stored = store.put("api_files", file_key, {"file_id": file_id, "filename": filename, "rows": rows})
    file_id = stored["file_id"]

    hyper = hyperparameters(cfg)
    job_key = cache_key(stage="api_job", **where, model=model, hyperparameters=hyper, seed=cfg.seed, suffix=suffix)
    job_record = store.get("api_jobs", job_key, paid=True)
    if job_record is None:
        job_id = _find_job(client, file_id, model, hyper, cfg.seed)
        if job_id is None:
            say(f"creating a finetuning job: {model}, {hyper}, seed {cfg.seed}, suffix {suffix!r}")
            job_id = client.call(lambda raw: raw.fine_tuning.jobs.create(
                model=model, training_file=file_id, suffix=suffix, seed=cfg.seed,
                hyperparameters=hyper)).id
        else:
            say(f"resuming finetuning job {job_id} (found by its file, model and settings)")
        job_record = store.put("api_jobs", job_key, {"job_id": job_id, "file_id": file_id})
    return job_record["file_id"], job_record["job_id"]


POLL_ENV = "WEIRDGEN_POLL_SECONDS"


def first_poll_seconds() -> float:
    """The first wait between polls of a finetuning job (it grows by half each time the
    job's state is unchanged): 10 s, or ``$WEIRDGEN_POLL_SECONDS`` for a server whose jobs
    end in seconds (the test suite's)."""
    raw = os.environ.get(POLL_ENV)
    if raw is None:
        return 10.0
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"{POLL_ENV}={raw!r}: expected a positive number of seconds; unset it for the default 10")
    return value


def finetune(name: str, data_keys: list, cfg: TrainConfig, suffix: str, store: RunStore | None = None,
             client: Client | None = None, poll_seconds: float | None = None, max_poll_seconds: float = 300.0,
             say: Callable[[str], Any] = print) -> FinetunedModel:
    """Finetune ``name`` (``openai:…``) on the concatenated chat files: upload and create
    (``submit``), poll (with backoff from ``poll_seconds``, default ``first_poll_seconds``,
    printing status, trained tokens and new events), resume."""
    poll_seconds = poll_seconds or first_poll_seconds()  # a bad setting fails before anything is paid for
    store = store or RunStore()
    client = client or client_for(name)
    file_id, job_id = submit(name, data_keys, cfg, suffix, store, client, say)
    return _finished(name, file_id, job_id, cfg, store, client, poll_seconds, max_poll_seconds, say)


def _finished(name: str, file_id: str, job_id: str, cfg: TrainConfig, store: RunStore, client: Client,
              poll_seconds: float, max_poll_seconds: float, say: Callable[[str], Any]) -> FinetunedModel:
    """A submitted job's model: from the run store, or polled to its end and stored."""
    done_key = cache_key(stage="api_model", job_id=job_id)
    done = store.get("api_models", done_key, paid=True)
    if done is None:
        done = store.put("api_models", done_key, _poll(client, job_id, poll_seconds, max_poll_seconds, say))
    return FinetunedModel(name, job_id, file_id, done["model_id"], cfg.epochs, done["losses"])


def finetune_all(name: str, jobs: dict[Any, tuple[list, TrainConfig, str]], store: RunStore | None = None,
                 client: Client | None = None, poll_seconds: float | None = None, max_poll_seconds: float = 300.0,
                 say: Callable[[str], Any] = print) -> dict[Any, FinetunedModel]:
    """Every job of ``jobs`` (key -> data keys, settings, suffix) submitted first, then
    each polled to its end: the API runs them side by side, so a chapter waits about as
    long as its slowest job, not the sum of them. Arguments as for ``finetune``."""
    poll_seconds = poll_seconds or first_poll_seconds()  # a bad setting fails before anything is paid for
    store = store or RunStore()
    client = client or client_for(name)
    submitted = {key: submit(name, keys, cfg, suffix, store, client, say) for key, (keys, cfg, suffix) in jobs.items()}
    return {key: _finished(name, file_id, job_id, jobs[key][1], store, client, poll_seconds, max_poll_seconds, say)
            for key, (file_id, job_id) in submitted.items()}


def _events(client: Client, job_id: str) -> list[dict]:
    """A job's events as dicts: the OpenAI API answers with a JSON list; some compatible
    servers (FakeAI) stream them as server-sent events instead. Both are read."""
    response = client.call(lambda raw: raw.fine_tuning.jobs.with_raw_response.list_events(job_id, limit=100))
    text = response.http_response.text
    if "text/event-stream" in response.http_response.headers.get("content-type", ""):
        return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()
                and line[5:].strip() != "[DONE]"]
    return list(json.loads(text).get("data", []))


def _poll(client: Client, job_id: str, poll_seconds: float, max_poll_seconds: float,
          say: Callable[[str], Any]) -> dict:
    seen: set[str] = set()
    losses: dict[int, float] = {}
    delay, last = poll_seconds, None
    while True:
        job = client.call(lambda raw: raw.fine_tuning.jobs.retrieve(job_id))
        for event in sorted(_events(client, job_id), key=lambda e: e.get("created_at", 0)):
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            metrics = event.get("data") or {}
            if isinstance(metrics, dict) and "train_loss" in metrics and "step" in metrics:
                losses[int(metrics["step"])] = float(metrics["train_loss"])
            else:
                say(f"  {job_id}: {event.get('message', '')}")
        state = (job.status, getattr(job, "trained_tokens", None))
        if state != last:
            say(f"{job_id}: {job.status}" + (f", {state[1]} tokens trained" if state[1] else ""))
            last, delay = state, poll_seconds
        if job.status == "succeeded":
            return {"model_id": job.fine_tuned_model, "trained_tokens": getattr(job, "trained_tokens", None),
                    "losses": [losses[s] for s in sorted(losses)]}
        if job.status in ("failed", "cancelled"):
            error = getattr(job, "error", None)
            message = getattr(error, "message", None) or (error.get("message") if isinstance(error, dict) else None)
            raise FinetuneError(f"finetuning job {job_id} {job.status}: {message or 'no message from the API'}; "
                                "fix the cause, remove its record under runs/api_jobs/ and rerun to create a new job")
        client.sleep(delay)
        delay = min(max_poll_seconds, delay * 1.5)


# ---------------------------------------------------------------------- sampling


def _draw(client: Client, model_id: str, messages: list[dict], cfg: SampleConfig, count: int, first: int) -> list[str]:
    """``count`` answers, asked as one request with ``n`` and then one request per
    missing answer (a server that ignores ``n`` returns one choice), each seeded."""
    answers: list[str] = []
    while len(answers) < count:
        index = first + len(answers)
        n = 1 if getattr(client, "one_choice", False) else count - len(answers)
        try:
            response = client.call(lambda raw: raw.chat.completions.create(
                model=model_id, messages=messages, n=n, temperature=cfg.temperature,
                top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=cfg.seed * 1_000_003 + index))
        except APIError as e:
            if n > 1 and e.status == 400 and "'n'" in str(e):  # llama.cpp refuses n > 1: one per request
                client.one_choice = True
                continue
            raise
        got = [c.message.content or "" for c in sorted(response.choices, key=lambda c: c.index)]
        if not got:
            raise client.error(f"model '{model_id}' returned no choices")
        answers += got[: count - len(answers)]
    return [a.strip() for a in answers]


def sample_answers(name: str, questions: list[str], cfg: SampleConfig, model_id: str | None = None,
                   store: RunStore | None = None, label: str | None = None, client: Client | None = None,
                   concurrency: int = 8) -> pd.DataFrame:
    """``sample.sample_answers`` for an API model (``model_id``: its fine-tuned model,
    None for the base model): the same rows, the same per-question cache."""
    from .sample import sample_key

    store = store or RunStore()
    label = label or name
    keys = {q: sample_key(name, model_id, [{"role": "user", "content": q}], cfg) for q in questions}
    found = {q: store.get("samples", keys[q], paid=True) for q in dict.fromkeys(questions)}
    missing = [q for q, answers in found.items() if answers is None]
    if missing:
        client = client or client_for(name)
        target = model_id or api_name(name)

        def one(q: str) -> None:
            answers = _draw(client, target, [{"role": "user", "content": q}], cfg, cfg.samples_per_question, 0)
            found[q] = store.put("samples", keys[q], answers)

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(one, missing))
    rows = []
    for q_index, question in enumerate(questions):
        rows += [{"model": label, "question_id": q_index, "question": question, "sample": i, "answer": a}
                 for i, a in enumerate(found[question])]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- costs


def prices() -> dict:
    import yaml

    return yaml.safe_load(PRICES.read_text(encoding="utf-8"))


def estimate(name: str, training_sets: dict[str, list], cfg: TrainConfig, seeds: list[int],
             prompts: list[str], sample_cfg: SampleConfig, models_sampled: int,
             judge_calls: int = 0, judge_prompt_chars: int = 0, judge: str | None = None,
             more_sampling: list[tuple[str, list[str], SampleConfig, int]] = (),
             judge_output_tokens: int = 0, seeds_by_set: dict[str, list[int]] | None = None,
             pending_tokens: dict[str, int] | None = None) -> pd.DataFrame:
    """What a chapter would pay, before anything is paid for: one row per item (training
    per set and seed, sampling, judging) with approximate tokens and USD, and a total
    row. ``more_sampling`` adds sampling rows (label, prompts, settings, models sampled),
    e.g. a manipulation check's. A verdict costs one output token unless
    ``judge_output_tokens`` (all calls together) says more, as a reasoning judge's does.
    Every call is counted, cached or not: an upper bound. Self-hosted servers (any base
    URL that is not the OpenAI API) cost nothing. ``seeds_by_set`` gives a training set
    its own seeds (e.g. a control trained once beside a seed sweep). ``pending_tokens``
    adds, per training set, the tokens of one epoch of rows it will hold that are not
    written yet (a self-distilled dilution set, counted at its answers' ``max_tokens``)."""
    table = prices()
    paid = OPENAI_HOST in base_url()

    def price(model: str, kind: str) -> float:
        if not paid:
            return 0.0
        per_million = table["models"].get(model, {}).get(kind)
        if per_million is None:
            raise ConfigError(f"{PRICES.name}: no '{kind}' price for '{model}'; add it (USD per 1M tokens, "
                              f"from {table['source']}) or use a listed model")
        return per_million / 1e6

    model = api_name(name)
    rows = []
    for label, keys in training_sets.items():
        content, count = training_file(keys, cfg.max_examples)
        tokens = (approx_tokens(content) + (pending_tokens or {}).get(label, 0)) * cfg.epochs
        rows += [{"item": f"training {label} (seed {seed})", "calls": 1, "tokens": tokens,
                  "usd": tokens * price(model, "training")} for seed in (seeds_by_set or {}).get(label, seeds)]
    for label, some_prompts, some_cfg, models in [("sampling", prompts, sample_cfg, models_sampled), *more_sampling]:
        samples = len(some_prompts) * some_cfg.samples_per_question * models
        prompt_tokens = sum(approx_tokens(p) for p in some_prompts) * models
        out_tokens = samples * some_cfg.max_tokens
        # Priced as fine-tuned models (a base model costs less): an upper bound.
        usd = prompt_tokens * price(model, "finetuned_input") + out_tokens * price(model, "finetuned_output")
        rows.append({"item": f"{label} ({models} models)", "calls": len(some_prompts) * models,
                     "tokens": prompt_tokens + out_tokens, "usd": usd})
    if judge_calls and judge and is_api_model(judge):
        tokens = approx_tokens("x" * judge_prompt_chars) if judge_prompt_chars else 0
        out = max(judge_output_tokens, judge_calls)
        rows.append({"item": f"judging ({judge})", "calls": judge_calls, "tokens": tokens + out,
                     "usd": tokens * price(api_name(judge), "input") + out * price(api_name(judge), "output")})
    frame = pd.DataFrame(rows)
    total = {"item": "total (approximate: tokens are characters / 4; output at max_tokens)",
             "calls": int(frame["calls"].sum()), "tokens": int(frame["tokens"].sum()), "usd": float(frame["usd"].sum())}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def judging_load(prompts: list[str], sample_cfg: SampleConfig, verdicts: list[tuple[str, int]],
                 reasoning_tokens: int = 0) -> dict[str, int]:
    """``estimate``'s judging arguments for a chapter: ``verdicts`` lists (judge template,
    models whose answers it reads); every answer to every prompt is judged once per
    entry, each call priced at its template plus the longest prompt and an answer at
    ``max_tokens`` (about 4 characters a token), and its output at one token plus
    ``reasoning_tokens`` (a judge that reasons before its verdict writes up to that many)."""
    per_model = len(prompts) * sample_cfg.samples_per_question
    answer_chars = 4 * sample_cfg.max_tokens + max(map(len, prompts), default=0)
    calls = sum(per_model * models for _, models in verdicts)
    return {"judge_calls": calls, "judge_output_tokens": calls * (1 + reasoning_tokens),
            "judge_prompt_chars": sum(per_model * models * (len(template) + answer_chars)
                                      for template, models in verdicts)}


def check_budget(estimated: pd.DataFrame, budget_usd: float, where: str = "parameter budget_usd") -> None:
    """Refuse, before any paid call, a run estimated above ``budget_usd`` (0: no limit)."""
    total = float(estimated["usd"].iloc[-1])
    if budget_usd and total > budget_usd:
        raise ConfigError(f"{where}: this run is estimated at ${total:.2f}, above the budget of ${budget_usd:.2f}; "
                          "raise budget_usd or shrink the run (fewer samples, training sets or seeds)")


def dry_run(name: str, training_sets: dict[str, list], cfg: TrainConfig, seeds: list[int],
            prompts: list[str], sample_cfg: SampleConfig, models_sampled: int, budget_usd: float = 0.0,
            **more: Any) -> pd.DataFrame | None:
    """A chapter's setup step for an API model: the ``estimate`` (other arguments as
    there), refused by ``check_budget`` when above ``budget_usd``; None for a local model,
    which costs nothing."""
    if not is_api_model(name):
        return None
    client_for(name)  # no key: a one-line error here, before any upload
    estimated = estimate(name, training_sets, cfg, seeds, prompts, sample_cfg, models_sampled, **more)
    check_budget(estimated, budget_usd)
    return estimated
