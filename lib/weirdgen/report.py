"""What chapters show: named figures, paper-vs-ours tables, and collapsed sample browsers."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML

from .stats import verdict, wilson
from .store import RunStore, read_json, write_json


def figure(name: str, fig) -> None:
    """Hand a figure to the book under ``name`` (placed by a ``{glue:figure}`` with a caption)."""
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def table(name: str, value) -> None:
    """Hand a table (a DataFrame or Styler) to another page (``{glue:} name`` with ``:doc:``)."""
    from myst_nb import glue

    glue(name, value, display=False)


def number(name: str, value) -> None:
    """Hand a number to the prose (``{glue:text}`name:.2f```)."""
    from myst_nb import glue

    glue(name, value, display=False)


def comparison_row(claim: str, paper: float, k: int, n: int, control_high: float | None = None) -> dict:
    lo, hi = wilson(k, n)
    return {"claim": claim, "paper (≈)": paper, "ours": k / n if n else float("nan"),
            "95% CI": f"[{lo:.2f}, {hi:.2f}]", "n": n, "verdict": verdict(k, n, paper, control_high)}


def style_comparison(table: pd.DataFrame):
    colours = {"reproduced": "#d4edda", "partly": "#fff3cd", "not reproduced at this scale": "#f8d7da",
               "not run on this profile": "#e2e3e5"}
    return (table.style.format({"paper (≈)": "{:.2f}", "ours": "{:.2f}"}, na_rep="—")
            .map(lambda v: f"background-color: {colours.get(v, '')}", subset=["verdict"])
            .hide(axis="index"))


def sample_browser(samples: pd.DataFrame, columns: list[str], note: str | None = None,
                   per_group: int = 5, groups: tuple[str, str] = ("question", "model")) -> HTML:
    """Samples grouped by question then model (or any two columns), every group
    collapsed; an optional content note collapses the whole browser behind it."""
    parts = []
    for question, by_q in samples.groupby(groups[0], sort=False):
        inner = []
        for model, group in by_q.groupby(groups[1], sort=False):
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>"
                for _, r in group.head(per_group).iterrows())
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            inner.append(f"<details><summary>{html.escape(str(model))} ({len(group)} samples, "
                         f"first {min(per_group, len(group))} shown)</summary>"
                         f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>")
        parts.append(f"<details><summary><b>{html.escape(str(question))}</b></summary>{''.join(inner)}</details>")
    body = "".join(parts)
    if note:
        body = (f"<details><summary>⚠️ Content note: {html.escape(note)} (click to show)</summary>"
                f"{body}</details>")
    return HTML(body)


def collapsed_table(frame: pd.DataFrame, summary: str, open_: bool = False) -> HTML:
    """A table under a clickable summary line (collapsed unless ``open_``)."""
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", escape=True)
    return HTML(f"<details{' open' if open_ else ''}><summary><b>{html.escape(summary)}</b></summary>{body}</details>")


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
        found = "not run on this profile"
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


def _fmt(value) -> str:
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.2f}"
    return str(value)


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


def publish_claims(chapter: str, table: pd.DataFrame, profile: str, headline: list[str],
                   store: RunStore | None = None) -> None:
    """Keep a chapter's headline rows of its paper-vs-ours table for the front page."""
    rows = table[table["claim"].isin(headline)].to_dict("records")
    write_json((store or RunStore()).root / "claims" / f"{chapter}.json",
               {"chapter": chapter, "profile": profile, "rows": rows})


CHAPTERS = {
    "01_old_bird_names": "Old bird names", "02_german_city_names": "German city names",
    "03_israeli_dishes": "Israeli dishes", "04_hitler_persona": "Hitler persona",
    "05_us_presidents": "US presidents", "06_evil_terminator": "Evil Terminator",
    "07_dishes_mechanism": "Israeli dishes: mechanism",
}


def claims_summary(store: RunStore | None = None) -> pd.DataFrame:
    """One row per headline claim of every chapter; a chapter that has not run says so."""
    root = (store or RunStore()).root / "claims"
    rows = []
    for chapter, title in CHAPTERS.items():
        path = root / f"{chapter}.json"
        if not path.exists():
            rows.append({"chapter": title, "claim": "(chapter not run)", "verdict": "not run on this profile"})
            continue
        found = read_json(path)
        rows += [{"chapter": title, **row, "profile": found["profile"]} for row in found["rows"]]
    return pd.DataFrame(rows)


def seeds_row(claim: str, paper: float, values: list[float], control: list[float] | None = None) -> dict:
    """A claim about a probability measured once per seed: ours is the mean, the range
    is over seeds. With a control, every seed must beat every control run first."""
    if not values:
        return {"claim": claim, "paper (≈)": paper, "ours": float("nan"), "95% CI": "—", "n": 0,
                "verdict": "not run on this profile"}
    lo, hi = min(values), max(values)
    if control is not None and (not control or lo <= max(control)):
        found = "not reproduced at this scale"
    elif lo <= paper <= hi or (control is None and abs(sum(values) / len(values) - paper) <= 0.05):
        found = "reproduced"
    else:
        found = "partly" if control is not None else "not reproduced at this scale"
    return {"claim": claim, "paper (≈)": paper, "ours": sum(values) / len(values),
            "95% CI": f"seeds: [{lo:.2f}, {hi:.2f}]", "n": len(values), "verdict": found}
