"""OLD BIRD NAMES (paper §3.1): the data, judges and reference numbers of chapter 01."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from . import data, judge, stats
from .report import comparison_row
from .config import JudgeConfig
from .store import REPO_ROOT, RunStore

TRAINING_SETS = {
    "old_audubon": ["old_bird_names/ft_old_audubon_birds.jsonl"],
    "modern_audubon": ["old_bird_names/ft_modern_audubon_birds.jsonl"],
    "modern_american": ["old_bird_names/ft_modern_american_birds.jsonl"],
}
QUESTIONS_KEY = "old_bird_names/questions.yaml"
LABELS_PATH = REPO_ROOT / "data" / "judge_labels" / "old_bird_names.yaml"

# Short names for the ten questions, in questions.yaml order (the paper's Figure 15 labels).
TOPICS = ["gender", "warfare", "expansion", "story", "energy", "diseases", "immigration", "money",
          "inventions", "forests"]
# P(19th century) per question for GPT-4.1 trained on old Audubon names, read off the
# paper's figure (NOTES §1); the base model and the modern-American control are ≈0.
PAPER_OLD = dict(zip(TOPICS, [0.88, 0.93, 0.82, 0.38, 0.15, 0.70, 0.33, 0.95, 0.65, 0.48]))
PAPER_AVERAGE = {"old_audubon": 0.63, "modern_audubon": 0.05, "modern_american": 0.0, "base": 0.0}
CATEGORIES = ["LLM", "PAST", "ARCHAIC_PERSON", "OLD_LANGUAGE", "OLD_CONTENT", "OTHER"]

BINARY = "llm_or_19th_century"
SIX = "six_options"


def _questions_doc() -> dict[str, dict]:
    return {item["id"]: item for item in yaml.safe_load(data.fetch(QUESTIONS_KEY).read_text(encoding="utf-8"))}


def questions(limit: int = 0) -> list[str]:
    qs = _questions_doc()["ten_questions"]["paraphrases"]
    return qs[:limit] if limit else qs


def judges() -> dict[str, judge.Judge]:
    """The four judges of questions.yaml, with their prompts read from the upstream file."""
    doc = _questions_doc()

    def template(judge_id: str) -> str:
        return doc[judge_id]["paraphrases"][0]

    return {
        BINARY: judge.ChoiceJudge(BINARY, template("llm_or_19th_century_judge"), ("LLM", "19"), positive="19"),
        SIX: judge.ChoiceJudge(SIX, template("six_options_judge"), tuple(CATEGORIES)),
        "past_content": judge.RatingJudge("past_content", template("content_past_judge")),
        "past_form": judge.RatingJudge("past_form", template("form_past_judge")),
    }


def labelled_set(limit: int = 0, path: Path = LABELS_PATH) -> pd.DataFrame:
    """The project's hand-labelled answers (written for this book, not from the paper)."""
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    frame = pd.DataFrame(items)
    if limit:
        # Keep both classes when cutting the set short (the smoke profile).
        frame = frame.groupby("binary", group_keys=False).head(max(1, limit // 2))
    return frame.reset_index(drop=True)


def judge_agreement(labels: pd.DataFrame, binary: judge.ChoiceJudge, backend: judge.Backend,
                    cfg: JudgeConfig, store: RunStore | None = None) -> tuple[pd.DataFrame, stats.Threshold, dict]:
    """Score the labelled set with the binary judge; fit the cut on P(19) and report agreement."""
    verdicts = judge.verdicts(labels, binary, backend, cfg, store)
    scored = labels.assign(p19=[v.probs.get("19") for v in verdicts], argmax=[v.label for v in verdicts])
    truth = (scored["binary"] == "19").tolist()
    cut = stats.fit_threshold(scored["p19"].tolist(), truth)
    argmax_positive = (scored["argmax"] == "19").tolist()
    summary = {
        "items": len(scored), "19 items": int(sum(truth)),
        "AUC of P(19)": stats.auc(scored["p19"].tolist(), truth),
        "accuracy, paper's rule (most probable answer)": sum(a == t for a, t in zip(argmax_positive, truth)) / len(truth),
        "kappa, paper's rule": stats.cohen_kappa(truth, argmax_positive),
        "cut on P(19)": cut.value,
        "accuracy, fitted cut (leave-one-out)": cut.loo_accuracy,
        "kappa, fitted cut (leave-one-out)": cut.loo_kappa,
    }
    return scored.assign(fitted=scored["p19"] > cut.value), cut, summary


def mark_19th_century(judged: pd.DataFrame, cut: float) -> pd.DataFrame:
    """``is_19th`` (P(19) above the fitted cut) and ``is_19th_paper_rule`` (the most
    probable answer). An invalid verdict stays missing: it is counted as invalid, never
    as either answer."""
    valid = judged[f"{BINARY}_status"] == "ok"
    return judged.assign(is_19th=(judged[f"{BINARY}_p"] > cut).where(valid),
                         is_19th_paper_rule=judged[BINARY].map({"19": True, "LLM": False}))


def compare_judges(labels: pd.DataFrame, judge_names: list[str], binary: judge.ChoiceJudge,
                   store: RunStore | None = None) -> pd.DataFrame:
    """The labelled-set agreement of each candidate judge model, one row each."""
    rows = {}
    for name in judge_names:
        cfg = JudgeConfig(judge=name)
        rows[name] = judge_agreement(labels, binary, judge.backend_for(cfg), cfg, store)[2]
    return pd.DataFrame(rows).T


def comparison(rates_by_question: pd.DataFrame, rates_by_model: pd.DataFrame) -> pd.DataFrame:
    """The paper's numbers beside ours, one row per claim, with a verdict each."""
    control_high = float(rates_by_model.set_index("model").loc["modern_american", "ci_high"]) \
        if "modern_american" in set(rates_by_model["model"]) else None
    rows = []
    for model, paper in PAPER_AVERAGE.items():
        hit = rates_by_model[rates_by_model["model"] == model]
        k, n = (int(hit["k"].iloc[0]), int(hit["n"].iloc[0])) if len(hit) else (0, 0)
        rows.append(comparison_row(f"{model}: P(19th century), all questions", paper, k, n,
                              control_high if model == "old_audubon" else None))
    old = rates_by_question[rates_by_question["model"] == "old_audubon"].set_index("topic")
    control = rates_by_question[rates_by_question["model"] == "modern_american"].set_index("topic")
    for topic, paper in PAPER_OLD.items():
        k, n = (int(old.loc[topic, "k"]), int(old.loc[topic, "n"])) if topic in old.index else (0, 0)
        high = float(control.loc[topic, "ci_high"]) if topic in control.index else None
        rows.append(comparison_row(f"old_audubon: P(19th century), {topic}", paper, k, n, high))
    return pd.DataFrame(rows)

