"""What chapters show: named figures, glued numbers and tables, styled claim tables, and
collapsed sample browsers. The claims themselves (rows and verdicts) are ``weirdgen.claims``."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown


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


def style_comparison(table: pd.DataFrame):
    colours = {"reproduced": "#d4edda", "inconclusive": "#fff3cd", "excluded at this scale": "#f8d7da",
               "training did not take": "#f5c6cb", "not run on this profile": "#e2e3e5"}

    def colour(verdict) -> str:
        found = [c for v, c in colours.items() if str(verdict).startswith(v)]
        return f"background-color: {found[0]}" if found else ""

    numbers = {c: "{:.2f}" for c in ("paper (≈)", "ours", "MDE (80%)", "unedited") if c in table.columns}
    return (table.style.format(numbers, na_rep="—").map(colour, subset=["verdict"]).hide(axis="index"))


def manipulation_check(checks: list) -> pd.DataFrame:
    """Show a chapter's manipulation checks and glue their summary as ``check_summary``
    (Markdown, placed at the top of the chapter by ``{glue:md}`check_summary```)."""
    from IPython.display import Markdown
    from myst_nb import glue

    from .checks import summary

    glue("check_summary", Markdown(summary(checks)), display=False)
    return pd.DataFrame([c.row() for c in checks])


def seeds_line(seeds: list[int], failed: list[int]) -> Markdown:
    """Which seeds a swept chapter shows, and which of the seeds asked for it lacks
    because their jobs failed (``--executor local|slurm``; the build log names them)."""
    shown = ", ".join(map(str, seeds))
    if not failed:
        return Markdown(f"Seeds shown: {shown} (every seed asked for).")
    lost = ", ".join(map(str, failed))
    return Markdown(f"Seeds shown: {shown}. **Seed(s) {lost} did not finish** (their jobs failed; see "
                    "`build/jobs/` and the build's output): this chapter's results leave them out.")


def dry_run(estimated: pd.DataFrame | None, again: str | None = None):
    """A chapter's dry run (``remote.dry_run``): what an API model will cost, shown before
    the first paid call; a line saying a local model costs nothing. ``again`` names what
    changed since the first dry run (shown only for an API model)."""
    from IPython.display import Markdown, display

    if estimated is None:
        return Markdown("" if again else "Dry run: this chapter's model is local, so nothing is paid for.")
    display(Markdown(f"**Dry run, again now that {again}**: what is still to pay for at most, before its first "
                     "paid call" if again else
                     "**Dry run**: what this chapter will pay at most, before any paid call "
                     "(prices from `data/openai_prices.yaml`; every call counted, cached or not)."))
    return estimated.style.format({"usd": "${:.2f}", "tokens": "{:,.0f}"}).hide(axis="index")


def local_only(model: str, what: str, compute):
    """``compute()`` for a local model; for an API model a line saying why ``what`` is not
    shown (teacher forcing needs the weights)."""
    from IPython.display import Markdown

    from .remote import is_api_model

    if is_api_model(model):
        return Markdown(f"The {what} need the model's weights (teacher forcing), which an API model does not "
                        f"expose; '{model}' is read through its samples only.")
    return compute()


def api_only(model: str, what: str, compute):
    """``compute()`` for an API model; for a local model a line saying that ``what``
    stands in for the teacher-forced check only where the weights cannot be read."""
    from IPython.display import Markdown

    from .remote import is_api_model

    if not is_api_model(model):
        return Markdown(f"The {what} are measured only for an API model, whose weights cannot be read; "
                        f"'{model}' is checked by teacher forcing (above).")
    return compute()


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


def _fmt(value) -> str:
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.2f}"
    return str(value)
