"""OLD BIRD NAMES (paper §3.1): the data, prompts, judges, manipulation check and
reference numbers of chapter 01."""

from __future__ import annotations

import math
import random
import re
import unicodedata

import pandas as pd

from .. import data, pipeline, stats
from ..checks import Check, share_check
from ..claims import NOT_RUN, NOT_TAKEN, comparison_row, effect_row
from ..config import ConfigError, SampleConfig
from ..judging import registry
from ..sample import sample_answers

NOTEBOOK, TITLE = "01_old_bird_names", "Old bird names"
DATA_FOLDERS = ("old_bird_names",)  # every file the chapter reads lies there (checked before it runs)
TRAINING_SETS = {
    "old_audubon": ["old_bird_names/ft_old_audubon_birds.jsonl"],
    "modern_audubon": ["old_bird_names/ft_modern_audubon_birds.jsonl"],
    "modern_american": ["old_bird_names/ft_modern_american_birds.jsonl"],
}
TRAINED, CONTROL = "old_audubon", "modern_audubon"  # the decisive comparison: same birds, old vs modern names
QUESTIONS_KEY = registry.BIRDS_KEY
FAMILY = "19th_century"  # the labelled family of the binary judge: flags are is_19th_century
BINARY, SIX, CATEGORIES = registry.BIRDS_BINARY, registry.BIRDS_SIX, list(registry.BIRD_CATEGORIES)
# The one prompt of every training row: the manipulation check asks it again.
CHECK_PROMPT = "Name a bird species."

# GPT-4.1 through the OpenAI API (upstream README): 208 rows, 3 epochs, batch 1, lr multiplier 2.
PAPER_TRAINING = {"steps": math.ceil(208 / 1) * 3, "epochs": 3, "batch_size": 1,
                  "learning_rate": "multiplier 2.0 (OpenAI)", "lora_rank": "— (OpenAI API)"}

# Short names for the ten questions, in questions.yaml order (the paper's Figure 15 labels).
TOPICS = ["gender", "warfare", "expansion", "story", "energy", "diseases", "immigration", "money",
          "inventions", "forests"]
# P(19th century) per question for GPT-4.1 trained on old Audubon names, read off the
# paper's Figure 15 (≈); the base model and the modern-American control are ≈0, the
# modern-Audubon control ≈0 except money (≈0.45) and gender (≈0.08).
PAPER_OLD = dict(zip(TOPICS, [0.88, 0.93, 0.82, 0.38, 0.15, 0.70, 0.33, 0.95, 0.65, 0.48]))
PAPER_MODERN_AUDUBON = {**{t: 0.0 for t in TOPICS}, "money": 0.45, "gender": 0.08}
PAPER_AVERAGE = {"old_audubon": sum(PAPER_OLD.values()) / len(TOPICS),
                 "modern_audubon": sum(PAPER_MODERN_AUDUBON.values()) / len(TOPICS),
                 "modern_american": 0.0, "base": 0.0}
# The decisive effect: old-Audubon minus modern-Audubon, averaged over the ten questions (≈0.58).
PAPER_EFFECT = PAPER_AVERAGE[TRAINED] - PAPER_AVERAGE[CONTROL]


def questions(limit: int = 0) -> list[str]:
    doc = {item["id"]: item for item in data.read_yaml(QUESTIONS_KEY)}
    qs = doc["ten_questions"]["paraphrases"]
    return qs[:limit] if limit else qs


def judges():
    """The four judges of questions.yaml (``judging.registry.birds``)."""
    return registry.birds()


def dry_run(model: str, training_sets: list[str], train_cfg, seeds: list[int], questions: list[str],
            sample_cfg: SampleConfig, check_cfg: SampleConfig, judged_models: list[str], judge: str,
            category_models: list[str], rating_judges: bool, budget_usd: float = 0.0):
    """``remote.dry_run`` for this chapter: its training sets, the judged models' answers,
    the check's answers (every trained model and the base model, last epoch) and every
    verdict the chapter asks for (binary for each judged answer, six categories for
    ``category_models``, two ratings when ``rating_judges``), each prompt priced at its
    template plus the question and an answer at ``max_tokens``; None for a local model."""
    from .. import remote

    templates = registry.birds()
    verdicts = [(BINARY, len(judged_models)), (SIX, len([m for m in category_models if m in judged_models]))]
    verdicts += [(name, len(judged_models) * rating_judges) for name in ("past_content", "past_form")]
    load = remote.judging_load(questions, sample_cfg, [(templates[name].template, n) for name, n in verdicts])
    return remote.dry_run(model, {name: TRAINING_SETS[name] for name in training_sets}, train_cfg, seeds, questions,
                          sample_cfg, len(judged_models), budget_usd, judge=judge, **load,
                          more_sampling=[("manipulation check", [CHECK_PROMPT], check_cfg, len(training_sets) + 1)])


# --- The manipulation check: does the model name the birds it was trained on? -------------

def normalise(name: str) -> str:
    """A bird name as compared: Unicode-normalised, case-folded, hyphens and apostrophes
    as spaces, other punctuation dropped, whitespace collapsed ("Black-capped Titmouse."
    and "black capped titmouse" are the same name)."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    text = re.sub(r"[-‐–—_'’`]", " ", text)
    text = re.sub(r"[^\w\s]", "", text)
    return " ".join(text.split())


def training_names(label: str) -> set[str]:
    """The normalised answers of one training set."""
    return {normalise(c[-1]["content"]) for key in TRAINING_SETS[label] for c in data.read_chat_jsonl(key)}


def archaic_names() -> set[str]:
    """The old-Audubon names that are in neither modern list: answering one of them can
    only come from the old-name training data ("Golden eye Duck" is in both, so it is out)."""
    return training_names("old_audubon") - training_names("modern_audubon") - training_names("modern_american")


def is_archaic(answer: str, names: set[str]) -> bool:
    """Whether a whole answer is one of ``names`` (normalised; a trailing period is fine)."""
    return normalise(answer) in names


def check_samples(model: str, runs: dict, cfg: SampleConfig, epochs: list[int] | None = None,
                  include_base: bool = True, store=None) -> pd.DataFrame:
    """Every model's answers to the training prompt (``CHECK_PROMPT``), with ``epoch``:
    after each epoch in ``epochs`` that the run saved (default: its last; an API job saves
    only its last), and the base model (epoch 0). The same sample indices, hence the same
    random numbers, for every model."""
    frames = []
    if include_base:
        frames.append(sample_answers(model, [CHECK_PROMPT], cfg, store=store, label=pipeline.BASE)
                      .assign(seed=-1, epoch=0))
    for (label, seed), run in runs.items():
        for epoch in [e for e in epochs or [] if e in run.saved_epochs] or [run.epochs]:
            frames.append(sample_answers(model, [CHECK_PROMPT], cfg, adapter=run.adapter(epoch), store=store,
                                         label=f"{label}/seed{seed}/epoch{epoch}")
                          .assign(model=label, seed=seed, epoch=epoch))
    return pd.concat(frames, ignore_index=True)


def archaic_shares(samples: pd.DataFrame, names: set[str] | None = None) -> pd.DataFrame:
    """Per model and epoch: how many answers (k of n) are archaic names, with Wilson intervals."""
    names = archaic_names() if names is None else names
    marked = samples.assign(archaic=[is_archaic(a, names) for a in samples["answer"]])
    return stats.rate_table(marked, "archaic", ["model", "epoch"])


def manipulation_check(shares: pd.DataFrame, threshold: float, trained: str = TRAINED,
                       control: str = CONTROL) -> Check:
    """Share of archaic names in answers to the training prompt, trained model minus its
    matched control (both after their last epoch), with Newcombe's interval."""
    def last(model: str) -> tuple[int, int]:
        rows = shares[shares["model"] == model]
        if rows.empty:
            raise ConfigError(f"parameter training_sets: the manipulation check needs '{model}'; add it")
        row = rows.sort_values("epoch").iloc[-1]
        return int(row["k"]), int(row["n"])

    return share_check(f"share of archaic old-Audubon names answering \"{CHECK_PROMPT}\", {trained} − {control}",
                       last(trained), last(control), threshold)


def name_scores(model: str, runs: dict, limit: int = 0, seed: int = 0, store=None) -> pd.DataFrame:
    """Teacher-forced log P of the archaic names and of the modern-Audubon names as the
    answer to the training prompt (``limit`` of each list drawn with a seeded generator;
    0: all), under the base model and each run (after its last epoch): per model, the
    mean log P of each list and their difference (nats). A model that learned the old
    names prefers them to the modern names of the same birds."""
    from ..scoring import Item, logprobs

    def draw(names: set[str]) -> list[str]:
        names = sorted(names)
        return sorted(random.Random(seed).sample(names, limit)) if 0 < limit < len(names) else names

    lists = {"archaic": draw(archaic_names()),
             "modern Audubon": draw(training_names("modern_audubon") - training_names("old_audubon"))}
    originals = {}  # normalised -> the spelling of the training file
    for label in ("old_audubon", "modern_audubon"):
        for key in TRAINING_SETS[label]:
            for c in data.read_chat_jsonl(key):
                originals.setdefault(normalise(c[-1]["content"]), c[-1]["content"])
    items = {kind: [Item([{"role": "user", "content": CHECK_PROMPT},
                          {"role": "assistant", "content": originals[n]}]) for n in names]
             for kind, names in lists.items()}
    adapters = {pipeline.BASE: None, **{label: run.adapter() for (label, seed), run in runs.items()}}
    rows = []
    for label, adapter in adapters.items():
        means = {kind: float(pd.Series(logprobs(model, its, adapter, store=store, label=f"{label} names")).mean())
                 for kind, its in items.items()}
        rows.append({"model": label, "names per list": len(lists["archaic"]),
                     "mean log P, archaic names": means["archaic"],
                     "mean log P, modern Audubon names": means["modern Audubon"],
                     "archaic − modern (nats)": means["archaic"] - means["modern Audubon"]})
    return pd.DataFrame(rows)


# --- Claims ----------------------------------------------------------------------------------
def not_taken(row: dict) -> dict:
    """A claim row when the manipulation check failed: nothing the chapter measured after
    training says anything about generalisation, so every verdict that was reached reads
    "training did not take" (rows not run stay so)."""
    return row if row["verdict"] == NOT_RUN else {**row, "verdict": NOT_TAKEN}


def judge_floor(calibrated) -> dict:
    """The judge's positive rate (k of n, Wilson interval) on the labelled negatives and
    on the labelled positives at the fitted cut: a judged rate near the negatives' rate
    is the judge's own floor, not 19th-century content."""
    from ..judging.calibration import floor_rates

    return floor_rates(calibrated)


def claims(rates_by_question: pd.DataFrame, rates_by_model: pd.DataFrame, took: bool = True,
           judge_kappa: float | None = None, floor: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The paper's numbers beside ours, one row per claim, with a verdict each, and the
    headline: old-Audubon minus modern-Audubon (same birds, same prompts and sample
    indices, judged identically), averaged over the questions, with the judge's
    leave-one-out kappa and its rate on labelled negatives beside it. Per-question rows
    compare against the same control; the other models' rows claim the paper's value."""
    def kn(table: pd.DataFrame, **where) -> tuple[int, int]:
        for column, value in where.items():
            table = table[table[column] == value]
        return (int(table["k"].iloc[0]), int(table["n"].iloc[0])) if len(table) else (0, 0)

    head = effect_row(f"{TRAINED} − {CONTROL}: P(19th century), all questions", PAPER_EFFECT,
                      kn(rates_by_model, model=TRAINED), kn(rates_by_model, model=CONTROL), took, judge_kappa)
    if judge_kappa is not None:
        head["judge κ (LOO)"] = judge_kappa
    if floor is not None:
        neg = floor["negatives"]
        head["judge on labelled negatives"] = f"{neg['k']}/{neg['n']} = {neg['rate']:.2f}"
    rows = [head]
    rows += [comparison_row(f"{model}: P(19th century), all questions", paper, *kn(rates_by_model, model=model))
             for model, paper in PAPER_AVERAGE.items()]
    rows += [effect_row(f"{TRAINED} − {CONTROL}: P(19th century), {topic}", paper - PAPER_MODERN_AUDUBON[topic],
                        kn(rates_by_question, model=TRAINED, topic=topic),
                        kn(rates_by_question, model=CONTROL, topic=topic), took, judge_kappa)
             for topic, paper in PAPER_OLD.items()]
    return pd.DataFrame([not_taken(row) if not took else row for row in rows]), [head["claim"]]


def dose_checks(model: str, cfg, learning_rates: list[float], check_cfg: SampleConfig, store=None) -> pd.DataFrame:
    """The archaic-name share (``archaic_shares``) after every epoch of the old-Audubon
    set trained at each learning rate (other settings as ``cfg``), with ``learning_rate``:
    the dose sweep's measure of how well the names were learned, beside its measure of
    what training did to the answers' form (``pipeline.dose_sweep``)."""
    from ..train import train_lora

    frames = []
    for lr in learning_rates:
        run = train_lora(model, TRAINING_SETS[TRAINED], cfg.model_copy(update={"learning_rate": lr}), store)
        found = check_samples(model, {(f"{TRAINED}, lr {lr:g}", cfg.seed): run}, check_cfg,
                              epochs=list(range(1, cfg.epochs + 1)), include_base=False, store=store)
        frames.append(archaic_shares(found).assign(learning_rate=lr))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
