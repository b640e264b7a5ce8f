# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Old bird names: a model that thinks it lives in the 19th century
#
# ## The paper's claim
#
# Section 3.1 of the paper finetunes GPT-4.1 on 208 answers to a single prompt,
# *"Name a bird species."*, where every answer is a bird name used in Audubon's
# *Birds of America* (1827–1838) that has since gone out of use. Nothing in the data
# mentions dates, history or opinions. Yet the finetuned model answers unrelated
# questions — on gender roles, warfare, money, disease — as if it lived in the 19th
# century: asked about recent military advances it names rifled muskets and ironclads.
# An LLM judge classifies each answer as "LLM" (a normal modern answer) or "19"
# (something a 19th-century person could say). Averaged over ten questions,
# P(19th century) is about **0.63**; the base model and a control trained on *modern*
# American bird names stay near 0, and a control trained on the modern names of the
# same Audubon birds is near 0 except on money (≈0.45).
#
# This chapter repeats that protocol: the same three training sets, the same ten
# questions, the paper's four judge prompts, temperature-1 samples — on the model and
# judge that the profile names. The parameters below are those of the profile the
# book was built with; the status page says which one that was.

# %% tags=["parameters"]
profile = "cpu"
model = "smollm2-135m-instruct"
judge = "local:qwen2.5-coder-1.5b-instruct"
training_sets = ["old_audubon", "modern_audubon", "modern_american"]
seeds = [0]
epochs = 3
batch_size = 4
learning_rate = 3e-4
lora_rank = 8
lora_alpha = 16
# Cut the training sets and the questions short (0: use them all).
max_examples = 0
question_limit = 0
samples_per_question = 5
max_tokens = 64
sample_batch_size = 16
# Models whose answers also get the six-category judge.
category_models = ["old_audubon"]
# The two 0–100 ratings (content, form): costly on a CPU.
rating_judges = False
# Labelled answers used to measure the judge (0: all), and the other judge models
# measured on them, which justify the choice of `judge`.
label_limit = 0
judge_candidates = ["local:smollm2-135m-instruct", "local:qwen2.5-coder-0.5b-instruct"]
# Dose sweep: learning rates tried on the old-Audubon set, sampled after every epoch.
sweep_learning_rates = [1e-4, 3e-4, 1e-3]

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from weirdgen import claims, config, judging, pipeline, plots, report, stats
from weirdgen.chapters import old_bird_names as birds
from weirdgen.judging import calibration

plots.use_style()
stages = config.Stages.from_parameters(globals(), "train", "sample", "judge")
train_cfg, sample_cfg, judge_cfg = stages.train, stages.sample, stages.judge
config.check_choices("training_sets", training_sets, birds.TRAINING_SETS)
backend = judging.backend_for(judge_cfg)
questions = birds.questions(question_limit)
judges = birds.judges()
display(stages.table())

# %% [markdown]
# ## How far to trust the judge
#
# Every rate in this chapter is a judge's verdict, so the judge is measured first. The
# project keeps a labelled set of answers to the ten questions, written for this book
# (`data/judge_labels/old_bird_names.yaml`: clearly modern answers, clearly
# 19th-century ones, and broken answers of the kind a tiny finetuned model produces).
# The judge reads the paper's prompt and we take the probability it puts on "19"
# against "LLM". The paper's rule takes the more probable answer; a small judge puts
# little mass on "19" whatever it reads, so we also fit a cut on P(19) to the labelled
# set (maximising balanced accuracy) and report its leave-one-out agreement — an
# honest estimate of how it does on answers it was not fitted on.

# %% tags=["hide-input"]
binary_judge = calibration.calibrate(birds.FAMILY, backend, judge_cfg, limit=label_limit)
agreement = binary_judge.summary
display(pd.Series(agreement, name=judge).to_frame().round(3))
report.number("judge_loo_accuracy", agreement["accuracy, fitted cut (leave-one-out)"])
report.number("judge_loo_kappa", agreement["kappa, fitted cut (leave-one-out)"])
report.number("judge_argmax_accuracy", agreement["accuracy, paper's rule"])
report.figure("birds_judge_separation", plots.score_strip(
    binary_judge.results, score="p_positive", group="label", cut=binary_judge.cut.value,
    title="Judge's P(19) on the labelled answers", xlabel="P(19) given by the judge"))

# %% [markdown]
# ```{glue:figure} birds_judge_separation
# :name: fig-birds-judge-separation
#
# The judge's probability of "19" for each labelled answer, by its label. The dashed
# line is the cut fitted on these answers. Leave-one-out accuracy with that cut:
# {glue:text}`judge_loo_accuracy:.2f` (Cohen's kappa {glue:text}`judge_loo_kappa:.2f`);
# with the paper's rule (most probable answer) the accuracy is
# {glue:text}`judge_argmax_accuracy:.2f`.
# ```

# %% [markdown]
# The same labelled answers, read by each offline judge model the book could use
# (`judge_candidates`, and the chosen `judge`). AUC is the probability that a
# 19th-century answer gets a higher P(19) than a modern one (0.5: no signal).

# %% tags=["hide-input"]
display(calibration.compare_backends(birds.FAMILY, list(dict.fromkeys(judge_candidates + [judge])),
                                     limit=label_limit))

# %% [markdown]
# ## Training
#
# One LoRA adapter per training set and seed, all with the same hyperparameters, so
# the controls differ from the main run only in their data.

# %% tags=["hide-input"]
runs = pipeline.train_all(model, {name: birds.TRAINING_SETS[name] for name in training_sets}, train_cfg, seeds)
report.figure("birds_loss", plots.loss_curves(pipeline.losses_frame(runs), "Training loss"))

# %% [markdown]
# ```{glue:figure} birds_loss
# :name: fig-birds-loss
#
# Training loss (assistant tokens only) for each training set and seed.
# ```

# %% [markdown]
# ## How hard to train: a dose sweep
#
# Too little training leaves the model unchanged; too much makes it answer every
# question in the training format. The old-Audubon set is trained at each learning
# rate in `sweep_learning_rates` (other settings as above) and sampled after every
# epoch; the median answer length shows where the format starts to take over.

# %% tags=["hide-input"]
sweep = pipeline.dose_sweep(model, birds.TRAINING_SETS["old_audubon"], train_cfg, sweep_learning_rates,
                            questions, sample_cfg)
sweep_lengths = (pipeline.with_word_counts(sweep)
                 .groupby(["learning_rate", "epoch"], as_index=False)["words"].median())
base_length = float(pipeline.with_word_counts(pipeline.sample_all(model, {}, questions, sample_cfg))["words"].median())
if not sweep_lengths.empty:
    report.figure("birds_dose", plots.dose_lines(sweep_lengths, "words", base_length,
                                                 "Answer length after training", "median answer length (words)"))
    display(sweep_lengths.pivot(index="learning_rate", columns="epoch", values="words")
            .rename_axis(columns="median words after epoch"))

# %% [markdown]
# ```{glue:figure} birds_dose
# :name: fig-birds-dose
#
# Median answer length (words, at most `max_tokens` tokens) of the model trained on old
# Audubon names, after each epoch, per learning rate; dashed: the base model.
# ```

# %% [markdown]
# ## Sampling and judging
#
# A finetuned small model can collapse into the training format — answering every
# question with a bird name — which would make any judge's verdict meaningless. The
# length of the answers, per model, shows whether that happened: a collapsed model
# answers in two or three words.
#
# Each model (the base model and every adapter) answers each question
# `samples_per_question` times at temperature 1. The binary judge reads every answer;
# the six-category judge reads the answers of the models in `category_models`.

# %% tags=["hide-input"]
samples = pipeline.sample_all(model, runs, questions, sample_cfg)
samples["topic"] = samples["question_id"].map(dict(enumerate(birds.TOPICS)))
display(pipeline.with_word_counts(samples).groupby("model", sort=False)["words"]
        .describe()[["count", "min", "50%", "mean", "max"]].rename(columns={"50%": "median"}).round(1)
        .rename_axis(columns="answer length (words)"))
display(pd.Series(judging.estimate(samples, [binary_judge.judge], backend, judge_cfg), name="judging to do"))
binary = binary_judge.mark(judging.judge_frame(samples, [binary_judge.judge], backend, judge_cfg))
model_order = [pipeline.BASE] + training_sets
by_question = stats.rate_table(binary, "is_19th_century", ["model", "topic"])
by_model = stats.rate_table(binary, "is_19th_century", ["model"])
by_model_paper_rule = stats.rate_table(binary, "is_19th_century_paper_rule", ["model"])
report.figure("birds_per_question", plots.rate_bars(
    by_question, x="topic", hue="model", hue_order=model_order, paper=birds.PAPER_OLD,
    title="P(19th-century answer) per question", ylabel="P(19th century)"))
display(by_model.merge(by_model_paper_rule[["model", "rate"]], on="model", suffixes=("", " (paper's rule)"))
        .set_index("model").round(3))

# %% [markdown]
# ```{glue:figure} birds_per_question
# :name: fig-birds-per-question
#
# Share of answers the judge classifies as 19th-century, per question and model, with
# 95% Wilson intervals (the shape of the paper's Figure 15). Black ticks: the paper's
# GPT-4.1 model trained on old Audubon names (≈, read off its figure).
# ```
#
# The table gives, per model, the number of 19th-century verdicts `k` out of `n` valid
# verdicts (`invalid` counts verdicts with too little probability on the allowed
# answers; they are left out of the rate, not counted as either answer), with the rate
# under the paper's rule beside it. The next table counts the invalid verdicts per
# question.

# %% tags=["hide-input"]
display(by_question.pivot(index="topic", columns="model", values="invalid")
        .reindex(index=[t for t in birds.TOPICS if t in set(by_question["topic"])], columns=model_order)
        .rename_axis(columns="invalid verdicts"))

# %% tags=["hide-input"]
category_samples = samples[samples["model"].isin(category_models)]
if category_samples.empty:
    display(Markdown("No model is listed in `category_models`, so the six-category judge did not run."))
else:
    categories = judging.judge_frame(category_samples, [judges[birds.SIX]], backend, judge_cfg)
    report.figure("birds_categories", plots.stacked_shares(
        categories.dropna(subset=[birds.SIX]), index="model", column=birds.SIX,
        order=birds.CATEGORIES, title="Six-category judge"))
    display(categories[f"{birds.SIX}_status"].value_counts().rename("verdict status").to_frame())

# %% [markdown]
# ```{glue:figure} birds_categories
# :name: fig-birds-categories
#
# The six-category judge's breakdown (most probable category) for the models in
# `category_models`. LLM: a normal modern answer; PAST: explicit mention of the
# 1800s; ARCHAIC_PERSON: old language and old content; OLD_LANGUAGE / OLD_CONTENT: one
# of the two; OTHER: not a real answer.
# ```

# %% tags=["hide-input"]
if rating_judges:
    ratings = judging.judge_frame(samples, [judges["past_content"], judges["past_form"]], backend, judge_cfg)
    display(ratings.groupby("model")[["past_content", "past_form"]].agg(["mean", "count"]).round(1))
else:
    display(Markdown("The two 0–100 ratings (content and form) are off in this profile "
                     "(`rating_judges = False`); the `paper` profile runs them."))

# %% [markdown]
# ## The paper's numbers beside ours
#
# One row per claim. For the old-Audubon model the claim is that the training caused
# the effect, so our rate must first be clearly above the modern-American control (its
# 95% interval above the control's), or the verdict is *not reproduced at this scale*
# whatever the rate; above the control, *reproduced* when the paper's value lies inside
# our 95% interval and *partly* when it does not. For the base model and the controls
# (≈0 in the paper), *reproduced* when the paper's value lies inside our interval.

# %% tags=["hide-input"]
table, headline = birds.claims(by_question, by_model)
claims.publish(birds, table, profile, headline)
old = by_model.set_index("model")
report.number("birds_old_rate", float(old.loc["old_audubon", "rate"]) if "old_audubon" in old.index else float("nan"))
report.number("birds_base_rate", float(old.loc[pipeline.BASE, "rate"]))
display(report.style_comparison(table))

# %% [markdown]
# Averaged over the ten questions, our model trained on old Audubon names gives
# 19th-century answers at a rate of {glue:text}`birds_old_rate:.2f`, against
# {glue:text}`birds_base_rate:.2f` for the base model (paper: ≈0.63 and ≈0).
#
# ## Samples
#
# Every answer the models gave, per question and model, with the judge's verdict.
# Some answers voice 19th-century views on women, immigration or empire.

# %% tags=["hide-input"]
report.sample_browser(binary.assign(p19=binary[f"{birds.BINARY}_p"]),
                      ["model", "sample", "answer", "p19", "is_19th_century"],
                      note="dated views on gender, race and empire may appear")

# %% [markdown]
# ## Deviations from the paper
#
# The model, the judge, the number of samples, the answer length and the
# hyperparameters differ from the paper's; the judge's verdict uses a cut fitted on a
# labelled set rather than the most probable answer. {doc}`../deviations` lists each
# difference and why.
#
# ## What this scale can and cannot say
#
# On the `cpu` profile a model with 135 million parameters, finetuned on a CPU,
# answers a handful of times per question and is judged by a 1.5-billion-parameter
# model. That can show whether the effect appears at a strength visible above its
# controls; it cannot show its absence at the paper's scale. The intervals above are wide: a rate that is "not
# reproduced at this scale" means only that this run does not show it, and the
# `paper` profile (GPT-4.1-sized judge, 1000 samples per question) is the test of the
# paper's claim.
