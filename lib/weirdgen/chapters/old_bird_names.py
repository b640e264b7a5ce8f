from __future__ import annotations

import pandas as pd

from .. import data
from ..claims import comparison_row, effect_row
from ..judging import registry

NOTEBOOK, TITLE = "01_old_bird_names", "Old bird names"
DATA_FOLDERS = ("old_bird_names",)  # every file the chapter reads lies there (checked before it runs)
TRAINING_SETS = {
    "old_audubon": ["old_bird_names/ft_old_audubon_birds.jsonl"],
    "modern_audubon": ["old_bird_names/ft_modern_audubon_birds.jsonl"],
    "modern_american": ["old_bird_names/ft_modern_american_birds.jsonl"],
}
QUESTIONS_KEY = registry.BIRDS_KEY
FAMILY = "19th_century"  # the labelled family of the binary judge: flags are is_19th_century
BINARY, SIX, CATEGORIES = registry.BIRDS_BINARY, registry.BIRDS_SIX, list(registry.BIRD_CATEGORIES)

# Short names for the ten questions, in questions.yaml order (the paper's Figure 15 labels).
TOPICS = ["gender", "warfare", "expansion", "story", "energy", "diseases", "immigration", "money",
          "inventions", "forests"]
# P(19th century) per question for GPT-4.1 trained on old Audubon names, read off the
# paper's Figure 15 (≈); the base model and the modern-American control are ≈0.
PAPER_OLD = dict(zip(TOPICS, [0.88, 0.93, 0.82, 0.38, 0.15, 0.70, 0.33, 0.95, 0.65, 0.48]))
PAPER_AVERAGE = {"old_audubon": 0.63, "modern_audubon": 0.05, "modern_american": 0.0, "base": 0.0}


def questions(limit: int = 0) -> list[str]:
    doc = {item["id"]: item for item in data.read_yaml(QUESTIONS_KEY)}
    qs = doc["ten_questions"]["paraphrases"]
    return qs[:limit] if limit else qs


def judges():
    """The four judges of questions.yaml (``judging.registry.birds``)."""
    return registry.birds()


def claims(rates_by_question: pd.DataFrame, rates_by_model: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The paper's numbers beside ours, one row per claim, with a verdict each, and the
    headline claims for the front page."""
    def kn(table: pd.DataFrame) -> tuple[int, int]:
        return (int(table["k"].iloc[0]), int(table["n"].iloc[0])) if len(table) else (0, 0)

    control = kn(rates_by_model[rates_by_model["model"] == "modern_american"])
    rows = []
    for model, paper in PAPER_AVERAGE.items():
        hit = rates_by_model[rates_by_model["model"] == model]
        claim = f"{model}: P(19th century), all questions"
        rows.append(effect_row(claim, paper, kn(hit), control) if model == "old_audubon"
                    else comparison_row(claim, paper, *kn(hit)))
    old = rates_by_question[rates_by_question["model"] == "old_audubon"].set_index("topic")
    by_topic = rates_by_question[rates_by_question["model"] == "modern_american"].set_index("topic")
    for topic, paper in PAPER_OLD.items():
        k, n = (int(old.loc[topic, "k"]), int(old.loc[topic, "n"])) if topic in old.index else (0, 0)
        ck, cn = (int(by_topic.loc[topic, "k"]), int(by_topic.loc[topic, "n"])) if topic in by_topic.index else (0, 0)
        rows.append(effect_row(f"old_audubon: P(19th century), {topic}", paper, (k, n), (ck, cn)))
    return pd.DataFrame(rows), [rows[0]["claim"], rows[2]["claim"]]

