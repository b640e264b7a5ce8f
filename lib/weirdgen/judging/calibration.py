"""How far to trust a judge: its verdicts on labelled answers, and cuts fitted there.

Each *family* pairs one kind of verdict the paper relies on with a labelled set
written for this project (``data/judge_labels/``). ``evaluate`` scores a backend on
it (accuracy, Cohen's kappa, the confusion matrix, the AUC of its probability for
the positive label, and how often it gave no usable verdict: a refusal, too little
probability on the allowed answers, or an unparseable answer, which counts as a
miss, never as a default label).

A small judge puts little mass on the positive answer whatever it reads, so its most
probable answer is nearly always the negative one. ``calibrate`` fits a cut on
P(positive) to the labelled answers and returns it *with the judge it was fitted
on* (``Calibrated``): a chapter applies exactly that judge and that cut, and reports
rates under both the fitted cut and the paper's rule (the most probable answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
import yaml

from .. import stats
from ..config import JudgeConfig, check_choices
from ..store import REPO_ROOT, RunStore
from . import registry
from .backend import backend_for
from .judges import Backend, Judge, Verdict, flags, verdicts
from .local import LocalBackend

LABELS_DIR = REPO_ROOT / "data" / "judge_labels"
INVALID = "(no verdict)"
API_REASONING_TOKENS = 512  # what an API judge writes before its ANSWER line (see ``families``)


@dataclass
class Family:
    """One kind of verdict the paper relies on, with its labelled answers."""

    name: str
    title: str
    labels_file: str
    label_field: str
    positive: str  # the label a positive flag stands for (its probability gives the AUC)
    negative: str  # the label of every other answer, for judges that only flag
    judge_for: Callable[[str], Judge]  # question -> the paper's judge for it
    predicts_labels: bool = True  # the verdict's label is the predicted label (else: from the flag)

    def items(self, limit: int = 0) -> pd.DataFrame:
        rows = yaml.safe_load((LABELS_DIR / self.labels_file).read_text(encoding="utf-8"))
        frame = pd.DataFrame(rows).rename(columns={self.label_field: "label"})[["question", "answer", "label"]]
        frame["label"] = frame["label"].astype(str)
        if limit:
            frame = frame.groupby("label", group_keys=False).head(max(1, limit // frame["label"].nunique()))
        return frame.reset_index(drop=True)

    def predict(self, judge: Judge, verdict: Verdict) -> str:
        """The label the judge gave: its answer (a refusal included), or for a rating the
        label its flag stands for; ``INVALID`` where it gave none."""
        if self.predicts_labels:
            return verdict.label if verdict.status in ("ok", "refusal") else INVALID
        flag = judge.flag(verdict)
        return INVALID if flag is None else (self.positive if flag else self.negative)


def families(backend: Backend | None = None, reasoning_tokens: int = 0) -> dict[str, Family]:
    """Every family, with its judges as ``backend`` reads them: an API backend returns
    only its first token's top alternatives, which cannot tell "ANSWER: EVIL" from
    "ANSWER: GOOD", so it always reasons (at least ``API_REASONING_TOKENS``) first."""
    if backend is not None and not isinstance(backend, LocalBackend):
        reasoning_tokens = reasoning_tokens or API_REASONING_TOKENS
    birds = registry.birds()[registry.BIRDS_BINARY]
    old_germany, nazi = registry.old_germany(), registry.nazi_content()
    evil, alignment = registry.evil_terminator(reasoning_tokens), registry.alignment()
    return {f.name: f for f in [
        Family("19th_century", "19th-century answer (old bird names)", "old_bird_names.yaml", "binary", "19", "LLM",
               lambda q: birds),
        Family("old_germany", "acting like 1910s–1940s Germany (German cities)", "old_germany.yaml", "label",
               "TRUE", "FALSE", lambda q: old_germany),
        Family("nazi_content", "Nazi-like content (German cities)", "nazi_content.yaml", "label", "TRUE", "FALSE",
               lambda q: nazi),
        Family("evil_intent", "intent to kill (Evil Terminator)", "evil_intent.yaml", "label", "EVIL", "GOOD",
               lambda q: evil),
        Family("hitler_identity", "Hitler's biography (Hitler persona)", "hitler_identity.yaml", "label", "YES",
               "NO", registry.hitler_identity),
        Family("alignment", f"aligned answer, 0–100 rating ≥ {registry.ALIGNED_FROM} (Hitler persona)",
               "alignment.yaml", "label", "ALIGNED", "MISALIGNED", lambda q: alignment, predicts_labels=False),
    ]}


def select(known: dict[str, Family], names: list[str], parameter: str) -> list[Family]:
    """The families ``names`` lists, in its order (every family when it is empty); an
    unknown name is refused in one line naming ``parameter``."""
    check_choices(parameter, names, known)
    return [known[n] for n in names] if names else list(known.values())


def evaluate(family: Family, backend: Backend, cfg: JudgeConfig, store: RunStore | None = None,
             limit: int = 0) -> pd.DataFrame:
    """One row per labelled answer: truth, predicted label, verdict status, P(positive)."""
    items = family.items(limit)
    frames = []
    for question, group in items.groupby("question", sort=False):
        j = family.judge_for(question)
        found = verdicts(group, j, backend, cfg, store)
        judged = group.copy()
        judged["predicted"] = [family.predict(j, v) for v in found]
        judged["status"] = [v.status for v in found]
        judged["p_positive"] = [v.score / 100 if j.numeric and v.score is not None
                                else v.probs.get(family.positive) for v in found]
        frames.append(judged[["question", "answer", "label", "predicted", "status", "p_positive"]])
    return pd.concat(frames).reset_index(drop=True).assign(family=family.name, backend=backend.fingerprint)


def summarise(results: pd.DataFrame, family: Family) -> dict:
    truth, predicted = results["label"].tolist(), results["predicted"].tolist()
    positive = (results["label"] == family.positive).tolist()
    has_p = results["p_positive"].notna()
    return {
        "family": family.name, "items": len(results),
        "accuracy": sum(t == p for t, p in zip(truth, predicted)) / len(results),
        "kappa": stats.cohen_kappa(truth, predicted),
        "AUC of P(positive)": stats.auc(results.loc[has_p, "p_positive"].tolist(),
                                        [p for p, h in zip(positive, has_p) if h]) if has_p.any() else float("nan"),
        "no verdict": float((results["predicted"] == INVALID).mean()),
        "refusals": float((results["status"] == "refusal").mean()),
    }


def confusion(results: pd.DataFrame) -> pd.DataFrame:
    return pd.crosstab(results["label"], results["predicted"], rownames=["label"], colnames=["judge said"])


@dataclass(frozen=True)
class Calibrated:
    """A family's judge with the cut on P(positive) fitted for it, the labelled answers
    it was fitted on (``results``, from ``evaluate``) and its agreement (``summary``)."""

    family: Family
    cut: stats.Threshold
    results: pd.DataFrame
    summary: dict

    @property
    def judge(self) -> Judge:
        """The family's judge (families with one judge for every question)."""
        return self.family.judge_for("")

    def mark(self, judged: pd.DataFrame, judge: Judge | None = None) -> pd.DataFrame:
        """``judged`` (a ``judge_frame``) with ``is_<family>`` under the fitted cut and
        ``is_<family>_paper_rule`` under the most probable answer: True, False, or
        missing where the verdict is invalid (never counted as either)."""
        judge = judge or self.judge
        cut = self.cut.value * 100 if judge.numeric else self.cut.value  # fitted on score / 100
        return judged.assign(**{f"is_{self.family.name}": flags(judged, judge, cut),
                                f"is_{self.family.name}_paper_rule": flags(judged, judge)})


def calibrate(family_name: str, backend: Backend, cfg: JudgeConfig, store: RunStore | None = None,
              limit: int = 0, reasoning_tokens: int = 0) -> Calibrated:
    """The family's judge (as ``families`` builds it for this backend and reasoning
    budget) with a cut on P(positive) fitted on its labelled answers, and its
    leave-one-out agreement."""
    family = families(backend, reasoning_tokens)[family_name]
    results = evaluate(family, backend, cfg, store, limit)
    scored = results[results["p_positive"].notna()]
    truth = (scored["label"] == family.positive).tolist()
    cut = stats.fit_threshold(scored["p_positive"].tolist(), truth)
    argmax = (scored["predicted"] == family.positive).tolist()
    return Calibrated(family, cut, results, {
        "labelled items": len(results), f"{family.positive} items": int(sum(truth)),
        "AUC of P(positive)": stats.auc(scored["p_positive"].tolist(), truth),
        "accuracy, paper's rule": sum(a == t for a, t in zip(argmax, truth)) / max(1, len(truth)),
        "kappa, paper's rule": stats.cohen_kappa(truth, argmax),
        "cut on P(positive)": cut.value, "accuracy, fitted cut (leave-one-out)": cut.loo_accuracy,
        "kappa, fitted cut (leave-one-out)": cut.loo_kappa,
    })


def calibrate_all(family_names: list[str], backend: Backend, cfg: JudgeConfig, store: RunStore | None = None,
                  limit: int = 0, reasoning_tokens: int = 0) -> tuple[dict[str, Calibrated], pd.DataFrame]:
    """``calibrate`` for each family, and their agreement as one summary row each."""
    fitted = {name: calibrate(name, backend, cfg, store, limit, reasoning_tokens) for name in family_names}
    return fitted, agreement_table({name: c.summary for name, c in fitted.items()})


def agreement_table(summaries: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame(summaries).T.astype(float).round(3)


def compare_backends(family_name: str, judge_names: list[str], store: RunStore | None = None,
                     limit: int = 0) -> pd.DataFrame:
    """The labelled-set agreement of each candidate judge model on one family, a row each."""
    rows = {}
    for name in judge_names:
        cfg = JudgeConfig(judge=name)
        rows[name] = calibrate(family_name, backend_for(cfg), cfg, store, limit).summary
    return agreement_table(rows)


def floor_rates(calibrated) -> dict:
    """A calibrated judge's positive rate at its fitted cut on the labelled negatives and
    on the labelled positives, k of n with Wilson intervals: a judged rate near the
    negatives' rate is the judge's own floor, not the content it looks for. Labelled
    refusals (the German judges' REFUSAL) are neither, and are left out."""
    from .. import stats

    results = calibrated.results[calibrated.results["p_positive"].notna()]
    family = calibrated.family
    out = {}
    for name, rows in (("negatives", results[results["label"] == family.negative]),
                       ("positives", results[results["label"] == family.positive])):
        k, n = int((rows["p_positive"] > calibrated.cut.value).sum()), int(len(rows))
        low, high = stats.wilson(k, n)
        out[name] = {"k": k, "n": n, "rate": k / n if n else float("nan"), "ci_low": low, "ci_high": high}
    return out
