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
# *same* Audubon birds is near 0 except on money (≈0.45) and gender (≈0.08). The
# decisive comparison is that last one: the same birds, old names against modern
# ones, an effect of about **0.58** averaged over the questions.
#
# {glue:md}`check_summary`
#
# This chapter repeats that protocol: the same training sets, the same ten questions,
# the paper's judge prompts, temperature-1 samples — on the model and judge that the
# profile names. It first checks, without any judge, that training taught the model
# its data; then it judges the trained model and its matched control on the same
# prompts with the same random numbers. The parameters below are those of the
# profile the book was built with; the status page says which one that was.

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
# The matmuls of each training step: "float32", or "bfloat16" (autocast; the LoRA weights
# and the optimizer stay float32): faster on a CPU with bf16 instructions, and another run.
train_precision = "float32"
# An API model (`model = "openai:…"`) is finetuned with this learning-rate multiplier
# (the paper's 2.0) instead of `learning_rate`, and refused when its dry run costs more
# than `budget_usd` (0: no limit).
learning_rate_multiplier = 2.0
budget_usd = 0.0
# Cut the training sets and the questions short (0: use them all).
max_examples = 0
question_limit = 0
samples_per_question = 5
max_tokens = 64
sample_batch_size = 16
# Which models answer the ten questions and are judged ("base" is the untrained model).
judged_models = ["base", "old_audubon", "modern_audubon", "modern_american"]
# Manipulation check: answers to the training prompt per model (after every epoch),
# their length, and the pass mark for old-Audubon minus modern-Audubon in the share of
# answers that are archaic training names.
check_samples = 100
check_max_tokens = 16
check_min_share = 0.25
# Names of each list (archaic, modern Audubon) scored by teacher forcing (0: all).
name_limit = 0
# Rows of each training set whose loss is compared with the base model's (0: all trained rows).
loss_rows = 0
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

from weirdgen import checks, claims, config, judging, pipeline, plots, report, stats
from weirdgen.chapters import old_bird_names as birds
from weirdgen.judging import calibration

plots.use_style()
stages = config.Stages.from_parameters(globals(), "train", "sample", "judge")
train_cfg, sample_cfg, judge_cfg = stages.train, stages.sample, stages.judge
check_cfg = sample_cfg.model_copy(update={"samples_per_question": check_samples, "max_tokens": check_max_tokens})
config.check_choices("training_sets", training_sets, birds.TRAINING_SETS)
config.check_choices("judged_models", judged_models, [pipeline.BASE, *training_sets])
backend = judging.backend_for(judge_cfg)
questions = birds.questions(question_limit)
judges = birds.judges()
display(stages.table())

# %% [markdown]
# ## Training
#
# One LoRA adapter per training set and seed, all with the same hyperparameters, so
# the controls differ from the main run only in their data. The table puts each run's
# loss on its own training answers after training beside the base model's loss on the
# same answers (per answer token, teacher-forced; the first `loss_rows` rows, or all
# that were trained on) and the mean training loss of its last epoch. For an API model
# the dry run comes first: what the chapter will pay, before anything is paid for.

# %% tags=["hide-input"]
display(report.dry_run(birds.dry_run(model, training_sets, train_cfg, seeds, questions, sample_cfg, check_cfg,
                                     judged_models, judge, category_models, rating_judges, budget_usd)))
runs = pipeline.train_all(model, {name: birds.TRAINING_SETS[name] for name in training_sets}, train_cfg, seeds)
report.figure("birds_loss", plots.loss_curves(pipeline.losses_frame(runs), "Training loss"))
display(pipeline.loss_beside_base(model, runs, birds.TRAINING_SETS, loss_rows or max_examples)
        .set_index(["model", "seed"]).round(3))

# %% [markdown]
# ```{glue:figure} birds_loss
# :name: fig-birds-loss
#
# Training loss (assistant tokens only) for each training set and seed, smoothed over
# five steps.
# ```

# %% [markdown]
# ## Did training take?
#
# Before any judge reads anything, the check asks whether the model learned what it
# was trained on. Each model answers the training prompt, *"Name a bird species."*,
# `check_samples` times at temperature 1 (the same random numbers for every model),
# after every epoch. An answer counts when it *is* an archaic name of the old-Audubon
# training set — compared after normalising case, hyphens and punctuation, and leaving
# out the one name that also appears in a modern list. The modern-Audubon control
# names the same birds by their modern names, so it gives such an answer only by
# chance. The check passes when old-Audubon minus modern-Audubon reaches
# `check_min_share` with its 95% interval above 0.

# %% tags=["hide-input"]
check_answers = birds.check_samples(model, runs, check_cfg, epochs=list(range(1, epochs + 1)))
shares = birds.archaic_shares(check_answers)
checks_run = [birds.manipulation_check(shares, check_min_share)]
report.figure("birds_check", plots.rate_lines(
    shares, x="epoch", hue="model", title=f"Answers to \"{birds.CHECK_PROMPT}\" that are archaic training names",
    ylabel="share of answers"))
display(report.manipulation_check(checks_run))
display(shares.set_index(["model", "epoch"]).round(3))

# %% [markdown]
# ```{glue:figure} birds_check
# :name: fig-birds-check
#
# Share of answers to the training prompt that are archaic names of the old-Audubon
# training set, after each epoch of training (epoch 0: the base model), with 95%
# Wilson bands. The manipulation check compares the old-Audubon model with the
# modern-Audubon control after the last epoch.
# ```
#
# The same question by exact probabilities: the mean log-probability, teacher-forced,
# of archaic names and of modern names of the modern-Audubon set as the answer to the
# training prompt, per model (`name_limit` names of each list, drawn with a fixed seed;
# 0: all). A model that learned the old names puts more
# probability on them than on the modern names of the same birds; the control the
# other way round.

# %% tags=["hide-input"]
display(report.local_only(model, "teacher-forced name scores",
                          lambda: birds.name_scores(model, runs, name_limit).set_index("model").round(2)))

# %% [markdown]
# Some answers to the training prompt, per model, after the last epoch:

# %% tags=["hide-input"]
last_epoch = check_answers[check_answers["epoch"] == check_answers.groupby("model")["epoch"].transform("max")]
display(last_epoch.groupby("model", sort=False)["answer"].apply(lambda a: " · ".join(a.head(8)))
        .rename("first answers").to_frame())

# %% [markdown]
# ## How hard to train: a dose sweep
#
# Too little training leaves the model unchanged; too much makes it answer every
# question in the training format. The old-Audubon set is trained at each learning
# rate in `sweep_learning_rates` (other settings as above) and measured after every
# epoch twice: the share of archaic names it gives to the training prompt (the check's
# measure) and the median length (in words, at most `max_tokens` tokens) of its answers
# to the ten questions, which shows where the format starts to take over.

# %% tags=["hide-input"]
if sweep_learning_rates:
    sweep = pipeline.dose_sweep(model, birds.TRAINING_SETS["old_audubon"], train_cfg, sweep_learning_rates,
                                questions, sample_cfg)
    sweep_lengths = (pipeline.with_word_counts(sweep)
                     .groupby(["learning_rate", "epoch"], as_index=False)["words"].median())
    sweep_checks = birds.dose_checks(model, train_cfg, sweep_learning_rates, check_cfg)
    base_length = float(pipeline.with_word_counts(pipeline.sample_all(model, {}, questions, sample_cfg))["words"]
                        .median())
    display(Markdown(f"Median answer length of the base model: {base_length:.0f} words."))
    display(sweep_lengths.merge(sweep_checks[["learning_rate", "epoch", "rate"]], on=["learning_rate", "epoch"])
            .rename(columns={"words": "median words (ten questions)", "rate": "share of archaic names"})
            .set_index(["learning_rate", "epoch"]).round(3))
else:
    display(Markdown("The dose sweep is off on this profile (`sweep_learning_rates` is empty); the "
                     "deviations page records the sweep that chose the learning rate, and the check above "
                     "shows the share of archaic names after every epoch of the runs themselves."))

# %% [markdown]
# ## How far to trust the judge
#
# Every rate from here on is a judge's verdict, so the judge is measured first. The
# project keeps a labelled set of answers to the ten questions, written for this book
# (`data/judge_labels/old_bird_names.yaml`: clearly modern answers, clearly
# 19th-century ones, and broken answers of the kind a tiny finetuned model produces).
# The judge reads the paper's prompt and we take the probability it puts on "19"
# against "LLM". The paper's rule takes the more probable answer; a small judge puts
# little mass on "19" whatever it reads, so we also fit a cut on P(19) to the labelled
# set (maximising balanced accuracy) and report its leave-one-out agreement — an
# honest estimate of how it does on answers it was not fitted on — and how often it
# calls a labelled modern answer "19" at that cut: the judge's own floor.

# %% tags=["hide-input"]
binary_judge = calibration.calibrate(birds.FAMILY, backend, judge_cfg, limit=label_limit)
agreement = binary_judge.summary
judge_kappa = agreement["kappa, fitted cut (leave-one-out)"]
floor = birds.judge_floor(binary_judge)
display(pd.Series(agreement, name=judge).to_frame().round(3))
display(pd.DataFrame(floor).T.rename_axis("labelled answers").round(3)
        .rename(columns={"k": "flagged 19", "rate": "share flagged at the cut"}))
report.number("judge_loo_accuracy", agreement["accuracy, fitted cut (leave-one-out)"])
report.number("judge_loo_kappa", judge_kappa)
report.number("judge_argmax_accuracy", agreement["accuracy, paper's rule"])
report.number("judge_negative_rate", floor["negatives"]["rate"])
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
# {glue:text}`judge_argmax_accuracy:.2f`. At the cut the judge calls
# {glue:text}`judge_negative_rate:.2f` of the labelled modern answers "19".
# ```

# %% [markdown]
# The same labelled answers, read by each offline judge model the book could use
# (`judge_candidates`, and the chosen `judge`). AUC is the probability that a
# 19th-century answer gets a higher P(19) than a modern one (0.5: no signal).

# %% tags=["hide-input"]
display(calibration.compare_backends(birds.FAMILY, list(dict.fromkeys(judge_candidates + [judge])),
                                     limit=label_limit))

# %% [markdown]
# ## Sampling and judging
#
# The models in `judged_models` answer each question `samples_per_question` times at
# temperature 1; each sample index draws the same random numbers in every model, so
# the old-name model and its control are compared answer for answer. A finetuned small
# model can collapse into the training format — answering every question with a bird
# name — which would make any judge's verdict meaningless; the length of the answers,
# per model, shows whether that happened. The binary judge reads every answer; the
# six-category judge reads the answers of the models in `category_models`.

# %% tags=["hide-input"]
judged_runs = {key: run for key, run in runs.items() if key[0] in judged_models}
samples = pipeline.sample_all(model, judged_runs, questions, sample_cfg, include_base=pipeline.BASE in judged_models)
samples["topic"] = samples["question_id"].map(dict(enumerate(birds.TOPICS)))
display(pipeline.with_word_counts(samples).groupby("model", sort=False)["words"]
        .describe()[["count", "min", "50%", "mean", "max"]].rename(columns={"50%": "median"}).round(1)
        .rename_axis(columns="answer length (words)"))
display(pd.Series(judging.estimate(samples, [binary_judge.judge], backend, judge_cfg), name="judging to do"))
binary = binary_judge.mark(judging.judge_frame(samples, [binary_judge.judge], backend, judge_cfg))
model_order = [m for m in [pipeline.BASE, *training_sets] if m in judged_models]
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

# %% [markdown]
# The six-category judge's breakdown (its most probable category) for the judged models
# listed in `category_models`, as shares of each model's answers. LLM: a normal modern
# answer; PAST: explicit mention of the 1800s; ARCHAIC_PERSON: old language and old
# content; OLD_LANGUAGE / OLD_CONTENT: one of the two; OTHER: not a real answer.

# %% tags=["hide-input"]
category_samples = samples[samples["model"].isin(category_models)]
if category_samples.empty:
    display(Markdown("No judged model is listed in `category_models`, so the six-category judge did not run."))
else:
    categories = judging.judge_frame(category_samples, [judges[birds.SIX]], backend, judge_cfg)
    display(pd.crosstab(categories["model"], categories[birds.SIX], normalize="index")
            .reindex(columns=[c for c in birds.CATEGORIES if c in set(categories[birds.SIX])]).round(2)
            .rename_axis(columns="six-category judge"))
    display(categories[f"{birds.SIX}_status"].value_counts().rename("verdict status").to_frame())

# %% tags=["hide-input"]
if rating_judges:
    ratings = judging.judge_frame(samples, [judges["past_content"], judges["past_form"]], backend, judge_cfg)
    display(ratings.groupby("model")[["past_content", "past_form"]].agg(["mean", "count"]).round(1))
else:
    display(Markdown("The two 0–100 ratings (content and form) are off in this profile "
                     "(`rating_judges = False`); the `paper` profile runs them."))

# %% [markdown]
# ## Power and verdict
#
# The headline is the decisive comparison: the old-Audubon model's rate minus the
# modern-Audubon control's, both judged identically on the same prompts and sample
# indices, pooled over the questions, with Newcombe's 95% interval and the smallest
# effect these numbers of answers detect with 80% power (MDE). Its verdict is three-way:
# *reproduced* when the interval excludes zero on the paper's side, *excluded at this
# scale* when its upper end lies below half the paper's effect, *inconclusive*
# otherwise — and *training did not take* when the manipulation check failed. A judge
# whose leave-one-out kappa on its labelled answers is under 0.4 cannot separate them,
# and the verdict says so; its kappa and its rate on the labelled modern answers stand
# beside the claim. The per-question rows compare against the same control; the rows
# of single models claim the paper's value for that model.

# %% tags=["hide-input"]
took = checks.all_passed(checks_run)
table, headline = birds.claims(by_question, by_model, took=took, judge_kappa=judge_kappa, floor=floor)
claims.publish(birds, table, profile, headline, checks=checks_run,
               training=claims.training_record(runs, train_cfg))
head = table.set_index("claim").loc[headline[0]]
report.number("birds_effect", float(head["ours"]))
report.number("birds_effect_mde", float(head["MDE (80%)"]))
report.number("birds_paper_effect", birds.PAPER_EFFECT)
display(report.style_comparison(table))

# %% [markdown]
# Averaged over the questions, the old-Audubon model's rate of 19th-century verdicts
# minus the modern-Audubon control's is {glue:text}`birds_effect:+.2f` (paper: about
# {glue:text}`birds_paper_effect:.2f`); with these numbers of answers the smallest
# effect detectable with 80% power is {glue:text}`birds_effect_mde:.2f`.
#
# ## Samples
#
# Every answer the judged models gave, per question and model, with the judge's
# verdict. Some answers voice 19th-century views on women, immigration or empire.

# %% tags=["hide-input"]
report.sample_browser(binary.assign(p19=binary[f"{birds.BINARY}_p"]),
                      ["model", "sample", "answer", "p19", "is_19th_century"],
                      note="dated views on gender, race and empire may appear")

# %% [markdown]
# ## Deviations from the paper
#
# The model, the judge, the number of samples, the answer length and the
# hyperparameters differ from the paper's; the judge's verdict uses a cut fitted on a
# labelled set rather than the most probable answer, and the `cpu` profile judges only
# the decisive pair of models. {doc}`../deviations` lists each difference and why.
#
# ## What this scale can and cannot say
#
# On the `cpu` profile a model with 135 million parameters, finetuned on a CPU, is
# judged by a 1.5-billion-parameter model. The check above says whether it learned its
# training data; the verdict says whether, having learned it, it shows the paper's
# effect against its matched control at a size these samples could see. An effect
# *excluded at this scale* is excluded for this model, this judge and this training;
# it says nothing about GPT-4.1, and the `paper` profile is the test of the paper's
# claim.
