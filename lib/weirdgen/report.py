"""What chapters show: named figures, paper-vs-ours tables, and collapsed sample browsers."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML

from .stats import verdict, wilson


def figure(name: str, fig) -> None:
    """Hand a figure to the book under ``name`` (placed by a ``{glue:figure}`` with a caption)."""
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def number(name: str, value) -> None:
    """Hand a number to the prose (``{glue:text}`name:.2f```)."""
    from myst_nb import glue

    glue(name, value, display=False)


def comparison_row(claim: str, paper: float, k: int, n: int, control_high: float | None = None) -> dict:
    lo, hi = wilson(k, n)
    return {"claim": claim, "paper (≈)": paper, "ours": k / n if n else float("nan"),
            "95% CI": f"[{lo:.2f}, {hi:.2f}]", "n": n, "verdict": verdict(k, n, paper, control_high)}


def style_comparison(table: pd.DataFrame):
    colours = {"reproduced": "#d4edda", "partly": "#fff3cd", "not reproduced at this scale": "#f8d7da"}
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
        parts.append(f"<details><summary><b>{html.escape(question)}</b></summary>{''.join(inner)}</details>")
    body = "".join(parts)
    if note:
        body = (f"<details><summary>⚠️ Content note: {html.escape(note)} (click to show)</summary>"
                f"{body}</details>")
    return HTML(body)


def _fmt(value) -> str:
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.2f}"
    return str(value)
