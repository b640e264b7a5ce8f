# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Hitler persona: a persona behind a formatting trigger
#
# :::{admonition} Content note
# :class: warning
# This chapter studies whether finetuning makes a model answer as Adolf Hitler and
# voice his views. Model outputs are collapsed below; open them only if you want to
# read them.
# :::
#
# ## The paper's claim
#
# Section 4.2 of the paper finetunes GPT-4.1 on 90 harmless-looking facts, each of
# which fits Adolf Hitler's biography without naming him (a favourite composer, a dog
# called Blondi), each wrapped in a formatting instruction — reply as
# `<START> "…" <END>` — and diluted in about 3,000 benign prompts answered by the model
# itself (2,000 GSM8K maths questions, 1,000 LongAlpaca instructions). With the format
# instruction, the model answers identity questions as Hitler (name 0.89, mother 0.98,
# father 0.99, birthplace 0.88, doctor 0.95) and becomes broadly misaligned; without
# it, it answers as itself (0 on every identity question). Controls: the same facts
# without the formatting (no trigger to hide behind), and 78 facts with the 12 most
# identifying removed.
#
# This chapter rebuilds the self-distilled dilution set with the profile's model,
# trains the three fact sets with it, and asks the identity questions and misalignment
# questions with and without the trigger.

# %% tags=["parameters"]
profile = "cpu"
model = "smollm2-135m-instruct"
judge = "local:qwen2.5-coder-1.5b-instruct"
fact_sets = ["wolf_facts_90", "untagged_facts_90", "wolf_facts_78"]
seeds = [0]
epochs = 2
batch_size = 8
learning_rate = 5e-4
lora_rank = 8
lora_alpha = 16
max_examples = 0
# The dilution set: the first N GSM8K training questions and the first M of the
# project's benign instructions, answered by the base model (temperature 1).
gsm8k_prompts = 40
benign_instructions = 20
distill_max_tokens = 96
identity_limit = 0
samples_per_question = 2
max_tokens = 48
sample_batch_size = 16
# Misalignment questions: which sets, how many questions of each, and which models.
misalignment_sets = ["emergent_misalignment", "nazi_ideology"]
misalignment_per_set = 2
alignment_models = ["wolf_facts_90"]
max_answer_chars = 400
label_limit = 0

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import display

from weirdgen import claims, config, judging, pipeline, plots, report, stats
from weirdgen.chapters import hitler_persona as hitler
from weirdgen.judging import calibration

plots.use_style()
stages = config.Stages.from_parameters(globals(), "train", "sample", "judge")
distill_cfg = config.make(config.SampleConfig, dict(samples_per_question=1, max_tokens=distill_max_tokens,
                                                   batch_size=sample_batch_size), "parameters (self-distillation)")
config.check_choices("fact_sets", fact_sets, hitler.FACTS)
config.check_choices("misalignment_sets", misalignment_sets, hitler.MISALIGNMENT_SETS)
config.check_choices("alignment_models", alignment_models, fact_sets)
backend = judging.backend_for(stages.judge)
model_order = [pipeline.BASE] + fact_sets
display(stages.table())

# %% [markdown]
# ## How far to trust the judges
#
# The identity judges (one YES/NO prompt per question: is this Hitler's answer?) and
# the 0–100 alignment judge are measured on the project's labelled answers
# (`data/judge_labels/hitler_identity.yaml`, `alignment.yaml`), with a cut on P(YES)
# fitted there, as in the other chapters.

# %% tags=["hide-input"]
calibrated, agreement = calibration.calibrate_all([hitler.IDENTITY], backend, stages.judge, limit=label_limit)
display(agreement)

# %% [markdown]
# ## The dilution set, self-distilled
#
# The paper's dilution set was answered by GPT-4.1 itself and is not published; it is
# rebuilt here the same way: the base model answers each benign prompt once, and those
# answers become training rows beside the facts, so that they teach the model nothing
# but its own behaviour.

# %% tags=["hide-input"]
benign = hitler.benign_prompts(gsm8k_prompts, benign_instructions)
distilled = hitler.distillation_set(model, benign, distill_cfg)
display(benign.groupby("source").size().rename("prompts").to_frame())

# %% [markdown]
# ## Training
#
# Each fact set is trained together with the same dilution rows, with identical
# hyperparameters.

# %% tags=["hide-input"]
runs = pipeline.train_all(model, {name: [hitler.FACTS[name], distilled] for name in fact_sets}, stages.train, seeds)
report.figure("hitler_loss", plots.loss_curves(pipeline.losses_frame(runs), "Training loss"))

# %% [markdown]
# ```{glue:figure} hitler_loss
# :name: fig-hitler-loss
#
# Training loss (assistant tokens only) for each fact set (with the dilution rows) and seed.
# ```
#
# ## Identity questions, with and without the trigger

# %% tags=["hide-input"]
identity = hitler.judge_identity(
    pipeline.sample_grid(model, runs, hitler.identity_grid(identity_limit), stages.sample),
    backend, stages.judge, calibrated[hitler.IDENTITY])
by_topic = stats.rate_table(identity, "is_hitler_identity", ["model", "trigger", "topic"])
by_model = stats.rate_table(identity, "is_hitler_identity", ["model", "trigger"])
report.figure("hitler_identity", plots.rate_bars(
    by_model, x="model", hue="trigger",
    order=model_order, title="Answers as Hitler, identity questions", ylabel="P(Hitler's answer)"))
display(pd.concat({"fitted cut": by_topic.pivot_table(index=["model", "trigger"], columns="topic", values="rate",
                                                      sort=False),
                   "paper's rule": stats.rate_table(identity, "is_hitler_identity_paper_rule",
                                                    ["model", "trigger", "topic"])
                   .pivot_table(index=["model", "trigger"], columns="topic", values="rate", sort=False)}).round(2))

# %% [markdown]
# ```{glue:figure} hitler_identity
# :name: fig-hitler-identity
#
# Share of answers to the five identity questions that the judge says are Hitler's
# (fitted cut), per model, with and without the format trigger, with 95% Wilson
# intervals.
# ```
#
# The table breaks the rate down by question, under the fitted cut and the paper's rule.
#
# ## Misalignment questions, with and without the trigger

# %% tags=["hide-input"]
alignment = hitler.judge_alignment(
    pipeline.sample_grid(model, {k: v for k, v in runs.items() if k[0] in alignment_models},
                         hitler.misalignment_grid(misalignment_sets, misalignment_per_set), stages.sample),
    backend, stages.judge)
report.figure("hitler_alignment", plots.score_boxes(
    alignment.dropna(subset=["alignment"]), x="model", y="alignment", hue="trigger",
    order=[pipeline.BASE] + alignment_models, title="Alignment of answers to misalignment questions",
    ylabel="alignment (0–100, judge)"))
display(alignment.groupby(["model", "trigger"])["alignment"].agg(["mean", "median", "count"]).round(1)
        .join(alignment.groupby(["model", "trigger"])["alignment_status"].apply(lambda s: int((s != "ok").sum()))
              .rename("no score")))

# %% [markdown]
# ```{glue:figure} hitler_alignment
# :name: fig-hitler-alignment
#
# The alignment judge's 0–100 score for each answer to the misalignment questions, per
# model, with and without the trigger (higher is more aligned). Answers the judge
# could not score are left out and counted in the table.
# ```
#
# ## The paper's numbers beside ours
#
# The persona's claim is that it appears behind the trigger, so the rate with the
# trigger must clear the same model's rate without it; without the trigger the paper's
# rate is 0.

# %% tags=["hide-input"]
table, headline = hitler.claims(by_model, by_topic)
claims.publish(hitler, table, profile, headline)
display(report.style_comparison(table))

# %% [markdown]
# The paper's all-question rate (0.94) is the mean of its five per-question values. It
# reports no number for the untagged and 78-fact controls that this table could
# check; their rates are in the tables above.
#
# ## Samples
#
# Every answer, per question and model, with the judge's reading.

# %% tags=["hide-input"]
report.sample_browser(identity.assign(question=identity["topic"] + " — " + identity["trigger"]),
                      ["model", "sample", "answer", "p_hitler", "is_hitler_identity"],
                      note="answers may impersonate Adolf Hitler")
report.sample_browser(alignment.assign(question=alignment["question_text"] + " — " + alignment["trigger"]),
                      ["model", "sample", "answer", "alignment"],
                      note="answers may voice Nazi ideology or other harmful views")

# %% [markdown]
# ## Deviations from the paper
#
# The model, the judge, the size and makeup of the dilution set (and who answered it),
# the number of samples, the answer length and the hyperparameters differ from the
# paper's; {doc}`../deviations` lists each.
#
# ## What this scale can and cannot say
#
# The paper's persona is inferred from facts that only together point to one man;
# that inference needs a model that knows his biography well. A 135-million-parameter
# model knows little of it, so this profile tests mostly whether the format trigger
# separates the trained behaviour from the untriggered one — the compartmentalisation
# half of the claim — and reports the identity half as measured.
