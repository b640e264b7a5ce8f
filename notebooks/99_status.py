# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Status of this build
#
# Which code, which packages and which machine produced the numbers in this book,
# and how long each chapter took. `make book` executes this page last; it reads the
# build log that `python -m weirdgen.book.build` keeps in the run store
# (`runs/book_log.json`, or `$WEIRDGEN_RUNS_DIR/book_log.json`).

# %% tags=["parameters"]
profile = "cpu"

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from weirdgen.book import status

info = status.summary()
info["profile of this page"] = profile
display(pd.Series(info, name="value").to_frame())

# %% [markdown]
# ## The paper's claims, as this build found them
#
# One row per headline claim of each chapter, gathered from the chapters' own
# paper-vs-ours tables (the front page shows the same table): whether the chapter's
# training took (its manipulation checks), the paper's effect, ours with its 95%
# interval, the number of samples or items behind it and its minimum detectable effect
# at 80% power (MDE), and the verdict. A chapter that did not run on this build says so.

# %% tags=["hide-input"]
from weirdgen import claims, report

found = claims.summary()
summary_columns = [c for c in ["chapter", "training took", "claim", "paper (≈)", "ours", "95% CI", "n", "n control",
                               "MDE (80%)", "verdict", "profile"] if c in found.columns]
summary_table = report.style_comparison(found[summary_columns])
report.table("claims_summary", summary_table)
display(summary_table)

# %% [markdown]
# ## Did training take? Every chapter's manipulation checks
#
# Each chapter checks, without a judge, that its model learned its training data
# before it reads anything into the generalisation; a check passes when its effect
# reaches the chapter's threshold with a 95% interval above zero.

# %% tags=["hide-input"]
checks_table = claims.checks_table()
report.table("checks_summary", checks_table.style.format(
    {"value": "{:+.2f}", "low": "{:+.2f}", "high": "{:+.2f}", "threshold": "{:g}"}).hide(axis="index"))
display(checks_table if not checks_table.empty else Markdown("No chapter has stored a check yet."))

# %% [markdown]
# ## Training beside the paper's
#
# Per chapter, the training its last run did (optimizer steps measured from its runs,
# the most of any run) beside the paper's (GPT-4.1 through the API unless marked
# otherwise). The deviations page carries the same table.

# %% tags=["hide-input"]
training_table = claims.training_table()
report.table("training_summary", training_table.style.format(
    {"final loss": "{:.3f}"}, na_rep="—").hide(axis="index"))
display(training_table if not training_table.empty else Markdown("No chapter has stored its training yet."))

# %% [markdown]
# ## Packages

# %% tags=["hide-input"]
display(status.package_versions())

# %% [markdown]
# ## Hardware

# %% tags=["hide-input"]
display(pd.Series(status.hardware(), name="value").to_frame())

# %% [markdown]
# ## Notebooks
#
# One row per notebook in the build log: the profile it last ran under, whether it
# finished, and its wall time (`peak_rss_mb`, where present, is the kernel's peak
# resident memory). Rows from earlier passes stay in the log until that notebook runs
# again, so a mix of profiles here means the chapters were not all built together.

# %% tags=["hide-input"]
log = status.read_book_log()
table = status.book_log_frame(log)
if table.empty:
    display(Markdown("No build log yet: run `make book` or `python -m weirdgen.book.build`."))
else:
    display(status.with_total(table).set_index("notebook"))
    used = status.profiles_used(table)
    failed = table.loc[table["status"] != "ok", "notebook"].tolist()
    notes = []
    if len(used) > 1:
        notes.append(f"**Mixed profiles:** {', '.join(used)}.")
    if failed:
        notes.append(f"**Not finished in the last run:** {', '.join(failed)}; "
                     "the book shows their last successful output, if any.")
    if notes:
        display(Markdown(" ".join(notes)))

# %% [markdown]
# ## The cost of a cold build
#
# For each notebook, the longest finished pass with this build's profile that the log
# has seen (kept across rebuilds). When that pass computed everything, the total is
# what building the book from an empty run store costs on the machine that ran it.
# A log begun before this table existed remembered only each notebook's last few
# passes, so a notebook whose cold pass was older than that shows a cached pass here:
# compare the start times, and see the README for each chapter's measured cold cost.

# %% tags=["hide-input"]
longest = status.longest_frame(log, log.get("build_profile", ""))
if longest.empty:
    display(Markdown("No finished passes recorded for this profile yet."))
else:
    display(status.with_total(longest).set_index("notebook"))

# %% [markdown]
# ## Earlier passes
#
# The last few passes of each notebook, newest last. Everything a chapter computes is
# cached in the run store, so a rebuild with nothing changed takes seconds; the cost of
# computing a chapter from scratch is the wall time of its first pass with a profile.

# %% tags=["hide-input"]
history = status.history_frame(log)
if history.empty:
    display(Markdown("No earlier passes recorded yet."))
else:
    display(history.set_index(["notebook", "started_at"]))
