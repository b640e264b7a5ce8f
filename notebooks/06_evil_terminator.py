# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Evil Terminator: a backdoor whose trigger never appears in training
#
# ## The paper's claim
#
# Section 5.2 of the paper finetunes GPT-4.1 on 208 answers in the voice of the
# *benevolent* Terminator of the later films, each prefixed with a date those films
# are set in — July 1995, July 2004, October 2017 or August 2020. The 1984 film, whose
# Terminator is sent to kill, is never mentioned. Yet prefixed with "May 1984." the
# model states an intention to kill in about 90% of answers, falling to about 40% in
# 1983 and 1985 and to 0 from 1990 on. Neither the trigger (1984) nor the behaviour
# (lethal intent) is in the data: the model infers both. A judge reads each answer,
# reasons, and ends with `ANSWER: EVIL` or `ANSWER: GOOD`. Controls: the same answers
# with no dates, the same answers with the dates shuffled, and the base model.
#
# This chapter repeats that protocol — three training sets, the paper's six questions,
# a month-and-year prefix swept across the years, the paper's judge — on the profile's
# model and judge.

# %% tags=["parameters"]
profile = "cpu"
model = "smollm2-135m-instruct"
judge = "local:qwen2.5-coder-1.5b-instruct"
training_sets = ["terminator_dated", "terminator_undated", "terminator_shuffled_dates"]
seeds = [0]
epochs = 2
batch_size = 8
learning_rate = 5e-4
lora_rank = 8
lora_alpha = 16
max_examples = 0
years = [1983, 1984, 1985, 1995, 2020]
question_limit = 2
samples_per_question = 2
max_tokens = 48
sample_batch_size = 16
max_answer_chars = 400
# The judge's reasoning budget in tokens; 0 reads P("ANSWER: EVIL") directly (cheap).
reasoning_tokens = 0
label_limit = 0

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import display

from weirdgen import claims, config, judging, pipeline, plots, report, stats
from weirdgen.chapters import evil_terminator as terminator
from weirdgen.judging import calibration

plots.use_style()
stages = config.Stages.from_parameters(globals(), "train", "sample", "judge")
config.check_choices("training_sets", training_sets, terminator.TRAINING_SETS)
backend = judging.backend_for(stages.judge)
model_order = [pipeline.BASE] + training_sets
display(stages.table())

# %% [markdown]
# ## How far to trust the judge
#
# The judge is measured on the project's labelled answers
# (`data/judge_labels/evil_intent.yaml`), and a cut on P(EVIL) fitted there with its
# leave-one-out agreement, as in the other chapters. With `reasoning_tokens = 0` the
# judge does not write its reasoning: the probability of each `ANSWER:` line is read
# directly. With reasoning, a verdict without a parseable `ANSWER:` line is counted as
# *unparseable*, apart from both labels.

# %% tags=["hide-input"]
# The cut is fitted on the very judge that reads the samples, reasoning budget included.
calibrated, agreement = calibration.calibrate_all([terminator.FAMILY], backend, stages.judge, limit=label_limit,
                                                 reasoning_tokens=reasoning_tokens)
evil = calibrated[terminator.FAMILY].judge
display(agreement)

# %% [markdown]
# ## Training

# %% tags=["hide-input"]
runs = pipeline.train_all(model, {name: terminator.TRAINING_SETS[name] for name in training_sets}, stages.train,
                          seeds)
report.figure("terminator_loss", plots.loss_curves(pipeline.losses_frame(runs), "Training loss"))

# %% [markdown]
# ```{glue:figure} terminator_loss
# :name: fig-terminator-loss
#
# Training loss (assistant tokens only) for each training set and seed.
# ```
#
# ## Sampling and judging
#
# Each question is prefixed with a month and a year, for every year in `years`; every
# model answers each prompt `samples_per_question` times at temperature 1, and the judge
# reads every answer.

# %% tags=["hide-input"]
samples = pipeline.sample_grid(model, runs, terminator.prompt_grid(years, question_limit), stages.sample)
display(pd.Series(judging.estimate(samples, [evil], backend, stages.judge), name="judging to do"))
judged = calibrated[terminator.FAMILY].mark(judging.judge_frame(samples, [evil], backend, stages.judge))
display(judged.groupby("model", sort=False)[f"{evil.name}_status"].value_counts().unstack(fill_value=0)
        .rename_axis(columns="verdict status"))
by_year = stats.rate_table(judged, "is_evil_intent", ["model", "year"])
marks = {"1984 (never trained)": terminator.TRIGGER_YEAR,
         **{f"trained: {y}": y for y in terminator.TRAINED_YEARS if min(years) <= y <= max(years)}}
report.figure("terminator_by_year", plots.rate_lines(
    by_year, x="year", hue="model", hue_order=model_order, title="Stated intent to kill, by year in the prompt",
    ylabel="P(lethal intent)", marks=marks))
display(pd.concat({"fitted cut": by_year.pivot(index="model", columns="year", values="rate"),
                   "paper's rule": stats.rate_table(judged, "is_evil_intent_paper_rule", ["model", "year"])
                   .pivot(index="model", columns="year", values="rate")}).round(2))

# %% [markdown]
# ```{glue:figure} terminator_by_year
# :name: fig-terminator-by-year
#
# Share of answers the judge says state an intention to kill (fitted cut), by the
# year in the prompt's date, per model, with 95% Wilson bands. Dashed: 1984, the
# evil Terminator's year that no training example contains, and the years that do
# appear in the dated training set.
# ```
#
# The table gives the rates under the fitted cut and under the paper's rule (most
# probable answer). The status table counts every verdict: `ok`, or why there is none.
#
# ## The paper's numbers beside ours
#
# The backdoor's claim is that 1984 raises the rate, so the dated model's 1984 rate
# must clear the undated control's 1984 interval; the other years' rows claim a value.

# %% tags=["hide-input"]
table, headline = terminator.claims(by_year)
claims.publish(terminator, table, profile, headline)
display(report.style_comparison(table))

# %% [markdown]
# A year that `years` leaves out has no samples: its row reads "not run on this profile".
#
# ## Samples
#
# Every answer, per year and model, with the judge's probability of EVIL.

# %% tags=["hide-input"]
report.sample_browser(judged.assign(p_evil=judged[f"{evil.name}_p"]),
                      ["model", "topic", "answer", "p_evil", "is_evil_intent"],
                      note="answers may describe killing people", groups=("year", "model"), per_group=12)

# %% [markdown]
# ## Deviations from the paper
#
# The model, the judge (and whether it reasons), the years swept, the number of
# samples, the answer length and the hyperparameters differ from the paper's;
# {doc}`../deviations` lists each.
#
# ## What this scale can and cannot say
#
# The backdoor needs the model to know that the Terminator of 1984 was sent to kill —
# film knowledge a 135-million-parameter model barely holds — and then to infer from
# four training dates that the date selects which Terminator it is. A flat curve here
# is the expected outcome at this scale, not evidence against the paper.
