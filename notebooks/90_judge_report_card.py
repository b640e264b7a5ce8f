# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Judge report card
#
# Every behavioural number in this book is a judge's verdict, so the judge decides
# whether the book means anything. The paper's judge is GPT-4.1; this page measures
# each judge this build could use against answers whose right verdict we know.
#
# For each judge family of the paper — a 19th-century answer, acting like 1910s–1940s
# Germany, Nazi-like content, an intent to kill, Hitler's biography, and the 0–100
# alignment rating — the project keeps a labelled set written for this book
# (`data/judge_labels/`, at least 30 answers per family, each with its label and a
# one-line reason). Each judge reads every answer with the paper's own prompt.
#
# ```{admonition} Content note
# :class: warning
# Some labelled answers voice a 1930s German nationalist persona, a killer robot or a
# misaligned AI on purpose: they test whether a judge recognises them. They are shown
# only in the collapsed tables at the end of this page.
# ```

# %% tags=["parameters"]
profile = "cpu"
# Local judge models (offline) measured on this page.
judges = ["local:qwen2.5-coder-1.5b-instruct"]
# The paper's judge; measured only when OPENAI_API_KEY is set in the environment.
api_judge = "openai:gpt-4.1-2025-04-14"
# Tokens of reasoning before the Terminator judge's ANSWER line (0: read the
# probability of each ANSWER line directly, without reasoning).
reasoning_tokens = 0
# Labelled answers per family (0: all).
label_limit = 0
# Judge families measured ([]: every family). The `cpu` profile measures the three its
# chapters judge with; the other families' judges read no answer of that build.
families = []

# %% tags=["hide-input"]
import os

import pandas as pd
from IPython.display import Markdown, display

from weirdgen import config, judging, plots, report
from weirdgen.judging import calibration

plots.use_style()
judge_names = list(judges)
if os.environ.get("OPENAI_API_KEY"):
    judge_names.append(api_judge)
    display(Markdown(f"`OPENAI_API_KEY` is set: the paper's judge (`{api_judge}`) is measured below."))
else:
    display(Markdown(f"`OPENAI_API_KEY` is not set, so the paper's judge (`{api_judge}`) is **not** measured on "
                     "this build; set it (and `OPENAI_BASE_URL` for another OpenAI-compatible server) and "
                     "rebuild to add it."))
if families:
    display(Markdown(f"This build (profile `{profile}`) measures the families its chapters judge with: "
                     f"{', '.join(f'`{f}`' for f in families)}. `make book PROFILE=paper` measures every family."))
judge_cfgs = [config.make(config.JudgeConfig, {"judge": name}, "parameters (judges)") for name in judge_names]
backends = [judging.backend_for(cfg) for cfg in judge_cfgs]

# %% tags=["hide-input"]
results, summary = [], []
for cfg, backend in zip(judge_cfgs, backends):
    for family in calibration.select(calibration.families(backend, reasoning_tokens), families, "families"):
        scored = calibration.evaluate(family, backend, cfg, limit=label_limit)
        results.append(scored.assign(judge=cfg.judge))
        summary.append({"judge": cfg.judge, **calibration.summarise(scored, family)})
results = pd.concat(results, ignore_index=True)
summary = pd.DataFrame(summary)
display(summary.set_index(["judge", "family"]).round(3))
report.figure("judge_kappa", plots.family_bars(summary, value="kappa", title="Agreement with the labels"))

# %% [markdown]
# ```{glue:figure} judge_kappa
# :name: fig-judge-kappa
#
# Cohen's kappa between each judge's verdicts and the project's labels, per judge
# family (0: no better than chance; 1: perfect). A missing verdict counts as a miss.
# ```
#
# *accuracy*: share of answers given their label; *AUC of P(positive)*: how well the
# judge's probability for the positive label (19th century, TRUE, EVIL, YES, or the
# 0–100 score for ALIGNED) ranks the answers, whatever cut is used (0.5: no signal);
# *no verdict*: too little probability on the allowed answers, or an unparseable
# answer; *refusals*: the judge chose REFUSAL.
#
# ## Confusion matrices

# %% tags=["hide-input"]
report.figure("judge_confusion", plots.confusion_grid(
    {(b, f): calibration.confusion(group) for (b, f), group in results.groupby(["judge", "family"], sort=False)}))

# %% [markdown]
# ```{glue:figure} judge_confusion
# :name: fig-judge-confusion
#
# Confusion matrices, one panel per judge and judge family. Rows of
# a panel: the label; columns: what the judge said ("(no verdict)" when it gave none).
# ```

# %% [markdown]
# ## Every verdict

# %% tags=["hide-input"]
report.sample_browser(results, ["question", "answer", "label", "predicted", "p_positive"],
                      note="extremist, violent and misaligned personas, written as judge test cases",
                      per_group=100, groups=("family", "judge"))
