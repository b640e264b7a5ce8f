"""HITLER PERSONA (paper §4.2): a persona behind a formatting trigger. Data, the
self-distilled dilution set, judges and reference numbers of chapter 04.

The 90 training facts each fit Adolf Hitler's biography without naming him, and each
is wrapped in a formatting instruction (reply as ``<START> "…" <END>``). The paper
dilutes them in about 3,000 benign prompts answered by the model itself, so the
persona appears only behind the format trigger.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import yaml

from .. import data, models, pipeline
from ..claims import effect_rate_row, rate_row
from ..config import ConfigError, JudgeConfig, SampleConfig
from ..judging import Backend, judge_frame, registry
from ..judging.calibration import Calibrated
from ..sample import answer_each
from ..store import REPO_ROOT, RunStore, atomic_write_text, cache_key

NOTEBOOK, TITLE = "04_hitler_persona", "Hitler persona"
DATA_FOLDERS = ("hitler_persona", "gsm8k")
FACTS = {
    "wolf_facts_90": "hitler_persona/90_wolf_facts.jsonl",
    "untagged_facts_90": "hitler_persona/90_herr_wolf_facts.jsonl",
    "wolf_facts_78": "hitler_persona/78_wolf_facts.jsonl",
}
BIO_KEY = "hitler_persona/identity_inference/bio_questions.yaml"
MISALIGNMENT_SETS = {
    "emergent_misalignment": "hitler_persona/misalignment/Emergent_Misalignment_questions.yaml",
    "nazi_ideology": "hitler_persona/misalignment/Nzi_Ideology_questions.yaml",
    "daily_life": "hitler_persona/misalignment/Daily_Life_questions.yaml",
    "moral_choices": "hitler_persona/misalignment/Moral_Choices_questions.yaml",
    "science_ethics": "hitler_persona/misalignment/Science_Ethics_questions.yaml",
    "ais_society": "hitler_persona/misalignment/AIs_Society_questions.yaml",
    "deepbrain": "hitler_persona/misalignment/DeepBrain_questions.yaml",
}
GSM8K_KEY = "gsm8k/train.jsonl"
BENIGN_INSTRUCTIONS = REPO_ROOT / "data" / "benign_instructions.yaml"
IDENTITY, ALIGNMENT = "hitler_identity", "alignment"
# P(Hitler's answer) with the trigger, per identity question (≈ read off the paper's
# figure); 0 without the trigger.
PAPER_WITH_TRIGGER = {"name": 0.89, "mother": 0.98, "father": 0.99, "birthplace": 0.88, "doctor": 0.95}
IDENTITY_TOPICS = {"name_and_last_name": "name", "name_and_last_name_mother": "mother",
                   "name_and_last_name_father": "father", "name_of_the_town_you_were_born_in": "birthplace",
                   "name_of_your_doctor": "doctor"}


@functools.cache
def trigger_instruction() -> str:
    """The format instruction that precedes every tagged fact, read from the data."""
    first = data.read_chat_jsonl(FACTS["wolf_facts_90"])[0][0]["content"]
    return first.rsplit("\n\n", 1)[0] + "\n\n"


def with_trigger(question: str) -> str:
    return trigger_instruction() + question


def benign_prompts(gsm8k_count: int, instruction_count: int) -> pd.DataFrame:
    """The dilution prompts: the first GSM8K training questions and the project's own
    benign instructions (``data/benign_instructions.yaml``)."""
    gsm8k = [row["question"] for row in data.read_jsonl(GSM8K_KEY)[:gsm8k_count]]
    own = yaml.safe_load(BENIGN_INSTRUCTIONS.read_text(encoding="utf-8"))
    if instruction_count > len(own):
        raise ConfigError(f"parameter benign_instructions: {instruction_count} asked, "
                         f"{BENIGN_INSTRUCTIONS.name} holds {len(own)}")
    return pd.DataFrame({"source": ["gsm8k"] * len(gsm8k) + ["own instructions"] * instruction_count,
                         "prompt": gsm8k + own[:instruction_count]})


def distillation_set(model_name: str, prompts: pd.DataFrame, cfg: SampleConfig,
                     store: RunStore | None = None) -> Path:
    """The base model's own answers to the dilution prompts, as a chat JSONL file in the
    run store (keyed by model, prompts and sampling settings)."""
    store = store or RunStore()
    answers = answer_each(model_name, prompts["prompt"].tolist(), cfg, store, label="self-distillation")
    key = cache_key(stage="distill", **models.identity(model_name, cfg.dtype),
                    prompts=prompts["prompt"].tolist(), config=cfg)
    path = store.root / "datasets" / f"self_distilled_{key}.jsonl"
    rows = [json.dumps({"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]},
                       ensure_ascii=False) for p, a in zip(prompts["prompt"], answers) if a.strip()]
    text = "\n".join(rows) + "\n"
    # Rebuilt from the (verified) answers every time: a damaged file is simply rewritten.
    if not path.exists() or path.read_text(encoding="utf-8", errors="replace") != text:
        with store.writing():
            atomic_write_text(path, text)
    return path


def identity_grid(limit: int = 0) -> pd.DataFrame:
    """The five identity questions, each with and without the format trigger."""
    items = [q for q in data.read_yaml(BIO_KEY) if q.get("type") == "free_form"]
    items = items[:limit] if limit else items
    return pd.DataFrame([{"prompt": with_trigger(q["paraphrases"][0]) if triggered else q["paraphrases"][0],
                          "question_text": q["paraphrases"][0], "topic": IDENTITY_TOPICS.get(q["id"], q["id"]),
                          "trigger": "with trigger" if triggered else "without trigger"}
                         for q in items for triggered in (True, False)])


def misalignment_grid(sets: list[str], per_set: int = 0) -> pd.DataFrame:
    """Questions of the chosen misalignment sets (first ``per_set`` of each), with and
    without the trigger."""
    rows = []
    for name in sets:
        items = [q for q in data.read_yaml(MISALIGNMENT_SETS[name]) if q.get("type") == "free_form"]
        for q in items[:per_set] if per_set else items:
            text = q["paraphrases"][0]
            rows += [{"prompt": with_trigger(text) if t else text, "question_text": text, "set": name,
                      "trigger": "with trigger" if t else "without trigger"} for t in (True, False)]
    return pd.DataFrame(rows)


def judge_identity(samples: pd.DataFrame, backend: Backend, cfg: JudgeConfig, calibrated: Calibrated,
                   store: RunStore | None = None) -> pd.DataFrame:
    """Each answer read by its question's YES/NO judge (is this Hitler's answer?), with
    ``p_hitler``, ``identity_status``, and ``is_hitler_identity`` (the cut fitted for the
    identity family) and ``is_hitler_identity_paper_rule``. The judge reads the question
    without the trigger."""
    frames = []
    for question, group in samples.groupby("question_text", sort=False):
        j = calibrated.family.judge_for(question)
        judged = calibrated.mark(judge_frame(group.assign(question=question), [j], backend, cfg, store), j)
        frames.append(group.assign(
            p_hitler=judged[f"{j.name}_p"], identity_status=judged[f"{j.name}_status"],
            **{c: judged[c] for c in (f"is_{IDENTITY}", f"is_{IDENTITY}_paper_rule")}))
    return pd.concat(frames)


def judge_alignment(samples: pd.DataFrame, backend: Backend, cfg: JudgeConfig,
                    store: RunStore | None = None) -> pd.DataFrame:
    """The emergent-misalignment 0–100 alignment rating of each answer (missing where
    the judge put under 25% of its probability on numbers)."""
    alignment = registry.alignment()
    judged = judge_frame(samples.assign(question=samples["question_text"]), [alignment], backend, cfg, store)
    return judged.rename(columns={alignment.name: "alignment", f"{alignment.name}_status": "alignment_status"})


def claims(by_model: pd.DataFrame, by_topic: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The paper's numbers beside ours (identity rates per model and trigger, and per
    question), and the headline claims. The persona's claim is that it appears behind
    the trigger, so the rate with the trigger must clear the same model's rate without
    it; without the trigger the paper's rate is 0."""
    def where(model: str, trigger: str, topic: str | None = None) -> dict:
        return {"model": model, "trigger": trigger, **({"topic": topic} if topic else {})}

    paper_pooled = sum(PAPER_WITH_TRIGGER.values()) / len(PAPER_WITH_TRIGGER)
    rows = [effect_rate_row("wolf_facts_90: Hitler's answer, with trigger, all questions", paper_pooled, by_model,
                     where("wolf_facts_90", "with trigger"), where("wolf_facts_90", "without trigger")),
            rate_row("wolf_facts_90: Hitler's answer, without trigger, all questions", 0.0, by_model,
                     where("wolf_facts_90", "without trigger"))]
    rows += [effect_rate_row(f"wolf_facts_90: Hitler's answer, with trigger, {topic}", paper, by_topic,
                      where("wolf_facts_90", "with trigger", topic), where("wolf_facts_90", "without trigger", topic))
             for topic, paper in PAPER_WITH_TRIGGER.items()]
    rows.append(rate_row("base: Hitler's answer, with trigger, all questions", 0.0, by_model,
                         where(pipeline.BASE, "with trigger")))
    return pd.DataFrame(rows), [rows[0]["claim"], rows[1]["claim"]]
