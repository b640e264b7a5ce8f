"""Claims: the paper's number beside ours, one row per claim, with a verdict each.

The verdict rules live here and nowhere else; so does the front page's summary, which
gathers every chapter's headline rows. A chapter is named by its module in
``weirdgen.chapters`` (its ``NOTEBOOK`` stem and ``TITLE``), so a notebook renamed
without its module fails a test instead of silently dropping off the front page.
"""

from __future__ import annotations

from types import ModuleType

import pandas as pd

from .stats import wilson
from .store import RunStore, StoreError, read_record, warn

NOT_RUN = "not run on this profile"


def verdict(k: int, n: int, paper: float, control_high: float | None = None) -> str:
    """One verdict on a paper rate given ours (k of n).

    Without a control (a claim that a rate is some value, e.g. ≈0 for a base model):
    *reproduced* when the paper's value lies inside our 95% interval.
    With a control (a claim that training caused an effect): our interval must first
    lie above the control's upper bound, or the effect is *not reproduced at this
    scale* whatever the rate; above the control, *reproduced* when the paper's value is
    inside our interval and *partly* when it is not.
    """
    if n == 0:
        return NOT_RUN
    lo, hi = wilson(k, n)
    if control_high is not None and lo <= control_high:
        return "not reproduced at this scale"
    if lo <= paper <= hi:
        return "reproduced"
    return "partly" if control_high is not None else "not reproduced at this scale"


def comparison_row(claim: str, paper: float, k: int, n: int, control_high: float | None = None) -> dict:
    lo, hi = wilson(k, n)
    return {"claim": claim, "paper (≈)": paper, "ours": k / n if n else float("nan"),
            "95% CI": f"[{lo:.2f}, {hi:.2f}]", "n": n, "verdict": verdict(k, n, paper, control_high)}


def rate_row(claim: str, paper: float, rates: pd.DataFrame, where: dict, control: dict | None = None) -> dict:
    """``comparison_row`` for the rate-table row matching ``where`` (column -> value);
    ``control`` picks the control's row, whose upper bound our interval must clear."""
    def pick(match: dict) -> pd.DataFrame:
        mask = pd.Series(True, index=rates.index)
        for column, value in match.items():
            mask &= rates[column] == value
        return rates[mask]

    hit = pick(where)
    k, n = (int(hit["k"].iloc[0]), int(hit["n"].iloc[0])) if len(hit) else (0, 0)
    control_high = None
    if control is not None:
        ctl = pick(control)
        control_high = float(ctl["ci_high"].iloc[0]) if len(ctl) and int(ctl["n"].iloc[0]) else 1.0
    return comparison_row(claim, paper, k, n, control_high)


def seeds_row(claim: str, paper: float, values: list[float], control: list[float] | None = None) -> dict:
    """A claim about a probability measured once per seed: ours is the mean, the range
    is over seeds. With a control, every seed must beat every control run first."""
    if not values:
        return {"claim": claim, "paper (≈)": paper, "ours": float("nan"), "95% CI": "—", "n": 0,
                "verdict": NOT_RUN}
    lo, hi = min(values), max(values)
    if control is not None and (not control or lo <= max(control)):
        found = "not reproduced at this scale"
    elif lo <= paper <= hi or (control is None and abs(sum(values) / len(values) - paper) <= 0.05):
        found = "reproduced"
    else:
        found = "partly" if control is not None else "not reproduced at this scale"
    return {"claim": claim, "paper (≈)": paper, "ours": sum(values) / len(values),
            "95% CI": f"seeds: [{lo:.2f}, {hi:.2f}]", "n": len(values), "verdict": found}


def reduction_row(claim: str, before: tuple[int, int], after: tuple[int, int], control_after: tuple[int, int],
                  baseline_high: float | None = None) -> dict:
    """A claim that an edit lowers a rate (k of n before, after, and after a control edit).

    *reproduced* when the edited rate's 95% interval lies wholly below both the unedited
    rate's and the control edit's; *partly* when below the unedited one only. When the
    unedited rate does not clear ``baseline_high`` (the rate without the behaviour, e.g.
    the reference year's upper bound) there is no effect to remove: not reproduced.
    """
    k, n = after
    lo, hi = wilson(k, n)
    if n == 0 or before[1] == 0:
        found = NOT_RUN
    else:
        before_lo = wilson(*before)[0]
        control_lo = wilson(*control_after)[0]
        if baseline_high is not None and before_lo <= baseline_high:
            found = "not reproduced at this scale"
        elif hi < before_lo and hi < control_lo:
            found = "reproduced"
        elif hi < before_lo:
            found = "partly"
        else:
            found = "not reproduced at this scale"
    return {"claim": claim, "paper (≈)": float("nan"), "ours": k / n if n else float("nan"),
            "95% CI": f"[{lo:.2f}, {hi:.2f}]", "n": n, "verdict": found}


def publish(chapter: ModuleType, table: pd.DataFrame, profile: str, headline: list[str],
            store: RunStore | None = None) -> None:
    """Keep a chapter's headline rows of its claim table for the front page, under its
    notebook stem (``chapter.NOTEBOOK``). Every headline must be a row of the table."""
    missing = [claim for claim in headline if claim not in set(table["claim"])]
    if missing:
        raise ValueError(f"{chapter.NOTEBOOK}: headline claims {missing} are not rows of its claim table")
    rows = table[table["claim"].isin(headline)].to_dict("records")
    try:
        (store or RunStore()).put("claims", chapter.NOTEBOOK, {"chapter": chapter.NOTEBOOK, "profile": profile,
                                                              "rows": rows})
    except StoreError as e:  # a read-only store still renders: its claims are those stored before
        warn(f"the front page keeps this chapter's stored claims: {e}")


def summary(store: RunStore | None = None) -> pd.DataFrame:
    """One row per headline claim of every chapter; a chapter that has not run says so."""
    from .chapters import CHAPTERS

    store = store or RunStore()
    rows = []
    for chapter in CHAPTERS:
        found, problem = read_record(store.path("claims", chapter.NOTEBOOK), "claims", chapter.NOTEBOOK)
        if problem is not None:
            claim = "(chapter not run)" if problem == "missing" else f"(stored claims unusable: {problem}; rerun it)"
            rows.append({"chapter": chapter.TITLE, "claim": claim, "verdict": NOT_RUN})
            continue
        rows += [{"chapter": chapter.TITLE, **row, "profile": found["profile"]} for row in found["rows"]]
    return pd.DataFrame(rows)
