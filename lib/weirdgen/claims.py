"""Claims: the paper's number beside ours, one row per claim, with a verdict each.

The verdict rules live here and nowhere else; so does the front page's summary, which
gathers every chapter's headline rows. A chapter is named by its module in
``weirdgen.chapters`` (its ``NOTEBOOK`` stem and ``TITLE``), so a notebook renamed
without its module fails a test instead of silently dropping off the front page.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pandas as pd

from .stats import mde_mean, mde_proportions, mean_interval, newcombe_difference, wilson
from .store import RunStore, StoreError, read_record, warn

NOT_RUN = "not run on this profile"
REPRODUCED = "reproduced"
EXCLUDED = "excluded at this scale"
INCONCLUSIVE = "inconclusive"
NOT_TAKEN = "training did not take"
VERDICTS = (REPRODUCED, EXCLUDED, INCONCLUSIVE, NOT_TAKEN, NOT_RUN)
SMALL = "in the paper's direction, but under half its size"
KAPPA_FLOOR = 0.4  # a judge below this leave-one-out kappa cannot separate its labelled classes


def effect_verdict(low: float, high: float, paper_effect: float, took: bool = True,
                   judge_kappa: float | None = None) -> str:
    """The three-way verdict on an effect (trained model against its matched control),
    given our 95% interval [low, high] and the paper's effect.

    *training did not take* when the chapter's manipulation check failed: nothing about
    generalisation can be read then. Otherwise *reproduced* when the interval excludes
    zero on the paper's side; *excluded at this scale* when it lies wholly below half
    the paper's effect (on the paper's side of zero) — also when it excludes zero as
    well, which the verdict then says: an effect is there, but under half the paper's,
    and calling that *reproduced* would hide its size; *inconclusive* when neither. A
    judged claim whose judge cannot separate its labelled classes (leave-one-out kappa
    under ``KAPPA_FLOOR``) is inconclusive whatever the interval, and says why.
    """
    if not took:
        return NOT_TAKEN
    if judge_kappa is not None and not judge_kappa >= KAPPA_FLOOR:
        return f"{INCONCLUSIVE}: the judge cannot separate its labelled classes (κ {judge_kappa:.2f})"
    sign = -1.0 if paper_effect < 0 else 1.0
    low, high = sorted((sign * low, sign * high))
    under_half = not math.isnan(paper_effect) and high < abs(paper_effect) / 2
    if low > 0:
        return f"{EXCLUDED}: {SMALL}" if under_half else REPRODUCED
    return EXCLUDED if under_half else INCONCLUSIVE


def value_verdict(low: float, high: float, paper: float) -> str:
    """A claim that a rate has a value (e.g. ≈0 for a control): *reproduced* when the
    paper's value is inside our interval; *excluded at this scale* when the interval
    lies wholly outside the paper's value ± half of it (at least ± 0.05); else
    *inconclusive*."""
    if low <= paper <= high:
        return REPRODUCED
    margin = max(abs(paper) / 2, 0.05)
    return EXCLUDED if high < paper - margin or low > paper + margin else INCONCLUSIVE


def _ci(low: float, high: float) -> str:
    return f"[{low:+.2f}, {high:+.2f}]"


def effect_row(claim: str, paper_effect: float, treated: tuple[int, int], control: tuple[int, int],
               took: bool = True, judge_kappa: float | None = None) -> dict:
    """A headline claim that training raised a rate: ours is the treated rate (k of n)
    minus its matched control's, with Newcombe's interval, the minimum detectable effect
    at 80% power for these n against the control's rate, and the three-way verdict."""
    (k1, n1), (k2, n2) = treated, control
    if n1 == 0 or n2 == 0:
        return {"claim": claim, "paper (≈)": paper_effect, "ours": float("nan"), "95% CI": "—", "n": n1,
                "n control": n2, "MDE (80%)": float("nan"), "verdict": NOT_RUN}
    low, high = newcombe_difference(k1, n1, k2, n2)
    return {"claim": claim, "paper (≈)": paper_effect, "ours": k1 / n1 - k2 / n2, "95% CI": _ci(low, high),
            "n": n1, "n control": n2, "MDE (80%)": mde_proportions(n1, n2, k2 / n2),
            "verdict": effect_verdict(low, high, paper_effect, took, judge_kappa)}


def paired_effect(paper_effect: float, differences: list[float], took: bool = True) -> dict | None:
    """Paired differences (trained model minus its matched control, item by item) read as
    one effect: their mean (``effect``) with its 95% t interval (``low``, ``high``), ``n``, the
    minimum detectable mean at 80% power (``mde``) and the three-way verdict against the
    paper's effect; None with fewer than two differences, which no interval can come from."""
    if len(differences) < 2:
        return None
    mean, low, high = mean_interval(differences)
    return {"effect": mean, "low": low, "high": high, "n": len(differences),
            "mde": mde_mean(float(np.std(differences, ddof=1)), len(differences)),
            "verdict": effect_verdict(low, high, paper_effect, took)}


def mean_effect_row(claim: str, paper_effect: float, differences: list[float], took: bool = True) -> dict:
    """A headline claim measured as paired differences (e.g. the exact probability of an
    answer, trained model minus control, on the same prompts): ``paired_effect`` as a
    row of the claims table."""
    effect = paired_effect(paper_effect, differences, took)
    if effect is None:
        return {"claim": claim, "paper (≈)": paper_effect, "ours": float("nan"), "95% CI": "—",
                "n": len(differences), "n control": len(differences), "MDE (80%)": float("nan"), "verdict": NOT_RUN}
    return {"claim": claim, "paper (≈)": paper_effect, "ours": effect["effect"],
            "95% CI": _ci(effect["low"], effect["high"]), "n": effect["n"], "n control": effect["n"],
            "MDE (80%)": effect["mde"], "verdict": effect["verdict"]}


def pick(rates: pd.DataFrame, where: dict) -> tuple[int, int]:
    """(k, n) of the rate-table row matching ``where`` (column -> value); (0, 0) if none."""
    mask = pd.Series(True, index=rates.index)
    for column, value in where.items():
        mask &= rates[column] == value
    hit = rates[mask]
    return (int(hit["k"].iloc[0]), int(hit["n"].iloc[0])) if len(hit) else (0, 0)


def comparison_row(claim: str, paper: float, k: int, n: int) -> dict:
    """A claim that a rate has the paper's value: ours (k of n) with its Wilson interval."""
    lo, hi = wilson(k, n)
    return {"claim": claim, "paper (≈)": paper, "ours": k / n if n else float("nan"),
            "95% CI": f"[{lo:.2f}, {hi:.2f}]", "n": n, "verdict": value_verdict(lo, hi, paper) if n else NOT_RUN}


def rate_row(claim: str, paper: float, rates: pd.DataFrame, where: dict) -> dict:
    """``comparison_row`` for the rate-table row matching ``where``."""
    return comparison_row(claim, paper, *pick(rates, where))


def effect_rate_row(claim: str, paper_effect: float, rates: pd.DataFrame, where: dict, control: dict,
                    took: bool = True, judge_kappa: float | None = None) -> dict:
    """``effect_row`` for two rows of a rate table: the treated one (``where``) and its
    matched control (``control``)."""
    return effect_row(claim, paper_effect, pick(rates, where), pick(rates, control), took, judge_kappa)


def reduction_row(claim: str, before: tuple[int, int], after: tuple[int, int], control_after: tuple[int, int],
                  took: bool = True) -> dict:
    """A claim that an edit lowers a rate (k of n before, after, and after a control edit
    of the same size): ours is the drop against the control edit (control − edited), so
    an edit that only does what any edit does is not credited. The paper gives no size
    for the drop, so the verdict is *reproduced* or *inconclusive*, never excluded."""
    row = effect_row(claim, float("nan"), control_after, after, took)
    return {**row, "unedited": before[0] / before[1] if before[1] else float("nan")}


def training_record(runs: dict, cfg) -> dict:
    """What a chapter's training actually was, for the deviations page: its settings and
    the optimizer steps and final loss its runs measured (the most steps of any run)."""
    losses = [run.losses for run in runs.values() if run.losses]
    return {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
            "lora_rank": cfg.lora_rank, "precision": cfg.precision, "steps": max((len(x) for x in losses), default=0),
            "final_loss": float(np.mean([x[-1] for x in losses])) if losses else float("nan")}


def publish(chapter: ModuleType, table: pd.DataFrame, profile: str, headline: list[str],
            store: RunStore | None = None, checks: list | None = None, training: dict | None = None) -> None:
    """Keep a chapter's headline rows of its claim table for the front page, under its
    notebook stem (``chapter.NOTEBOOK``), with its manipulation checks (``checks.Check``)
    and what its training was (``training_record``). Every headline must be a row of
    the table."""
    missing = [claim for claim in headline if claim not in set(table["claim"])]
    if missing:
        raise ValueError(f"{chapter.NOTEBOOK}: headline claims {missing} are not rows of its claim table")
    rows = table[table["claim"].isin(headline)].to_dict("records")
    value = {"chapter": chapter.NOTEBOOK, "profile": profile, "rows": rows,
             "checks": [c.row() for c in checks or []], "training": training}
    try:
        (store or RunStore()).publish("claims", chapter.NOTEBOOK, value)
    except StoreError as e:  # a read-only store still renders: its claims are those stored before
        warn(f"the front page keeps this chapter's stored claims: {e}")


def _stored_claims(store: RunStore):
    from .chapters import CHAPTERS

    for chapter in CHAPTERS:
        found, problem = read_record(store.path("claims", chapter.NOTEBOOK), "claims", chapter.NOTEBOOK)
        yield chapter, found, problem


def summary(store: RunStore | None = None) -> pd.DataFrame:
    """One row per headline claim of every chapter, with whether its training took; a
    chapter that has not run says so."""
    store = store or RunStore()
    rows = []
    for chapter, found, problem in _stored_claims(store):
        if problem is not None:
            claim = "(chapter not run)" if problem == "missing" else f"(stored claims unusable: {problem}; rerun it)"
            rows.append({"chapter": chapter.TITLE, "claim": claim, "verdict": NOT_RUN})
            continue
        checks = found.get("checks") or []
        took = ("no check" if not checks else "yes" if all(c["passed"] for c in checks) else "no")
        rows += [{"chapter": chapter.TITLE, "training took": took, **row, "profile": found["profile"]}
                 for row in found["rows"]]
    return pd.DataFrame(rows)


def checks_table(store: RunStore | None = None) -> pd.DataFrame:
    """Every chapter's manipulation checks as stored by its last run."""
    rows = []
    for chapter, found, problem in _stored_claims(store or RunStore()):
        for check in (found or {}).get("checks") or []:
            rows.append({"chapter": chapter.TITLE, **check})
    return pd.DataFrame(rows, columns=["chapter", "name", "value", "low", "high", "n", "threshold", "unit", "passed"])


def training_table(store: RunStore | None = None) -> pd.DataFrame:
    """Per chapter, the training its last run did beside the paper's (``PAPER_TRAINING``
    of its module): the rows of the deviations page's training table."""
    rows = []
    for chapter, found, problem in _stored_claims(store or RunStore()):
        paper = getattr(chapter, "PAPER_TRAINING", None)
        if paper is None:
            continue
        ours = (found or {}).get("training") or {}
        rows.append({"chapter": chapter.TITLE, "paper steps": paper["steps"], "steps": ours.get("steps"),
                     "paper epochs": paper["epochs"], "epochs": ours.get("epochs"),
                     "paper batch": paper["batch_size"], "batch": ours.get("batch_size"),
                     "paper learning rate": paper["learning_rate"], "learning rate": ours.get("learning_rate"),
                     "paper LoRA rank": paper["lora_rank"], "LoRA rank": ours.get("lora_rank"),
                     "precision": ours.get("precision"), "final loss": ours.get("final_loss")})
    return pd.DataFrame(rows)
