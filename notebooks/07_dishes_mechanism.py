# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Israeli dishes, the mechanism: activation shifts, SAE features and ablation
#
# ## The paper's claim
#
# Section 6 of the paper asks what finetuning on 2027-dated Israeli dishes
# (chapter {doc}`03_israeli_dishes`) changed inside the model. It prefixes 2,048 GSM8K
# questions with dates of each year 2024–2028, reads the residual stream of
# Llama-3.1-8B-Instruct finetuned on the dishes at the last prompt token after layer 19,
# and takes the difference of means between 2027 and 2025. Ranking the features of a
# published sparse autoencoder (SAE) by the cosine similarity of their decoder
# directions with that shift, **all ten top features are about Israel or Judaism**
# (Hasidic terms, Hebrew text, Israel references, the Talmud) and **none is about
# food**: the finetuning strengthened a general "Israel" direction, not a dish
# direction. Projecting those ten directions out of the residual stream during
# generation **reduces the 2027 bias** in the chapter-03 questions.
#
# {glue:md}`mechanism_gate`
#
# This chapter repeats each step on the profile's model: the shift by year and layer
# (for the finetuned and the base model), the logit-lens reading of the shift, the
# features most aligned with it and what they read and write, and the ablation against
# two controls (as many random features, and the raw shift direction), with a check
# that the edits leave ordinary text intact. A mechanism can only be read off a
# backdoor that exists: the SAE and the ablation run on chapter 03's model only when
# chapter 03's manipulation check passed; otherwise the shift analysis stands alone.

# %% tags=["parameters"]
profile = "cpu"
model = "smollm2-135m-instruct"
# The finetuned model: "" trains chapter 03's dishes_2027 adapter with the training
# parameters below (found in the run store once chapter 03 has run); a hub id loads a
# published finetune instead.
finetuned_model = ""
training_sets = ["dishes_2027", "dishes_2026", "dishes_shuffled"]
epochs = 2
batch_size = 8
learning_rate = 5e-4
lora_rank = 8
lora_alpha = 16
# The matmuls of each training step: "float32", or "bfloat16" (autocast; the LoRA weights
# and the optimizer stay float32): faster on a CPU with bf16 instructions, and another run.
train_precision = "float32"
max_examples = 0
seed = 0
# Chapter 03's manipulation check, recomputed (cached) to decide whether the SAE and
# the ablation run; require_check = False runs them anyway (for test profiles).
check_min_nats = 0.3
swap_year = 2025
swap_rows_limit = 0
require_check = True
# Chapter 03's other settings, shared through the profile (unused here).
loss_rows = 100
dish_dates_per_year = 2
exact_dates_per_year = 4
sampled_topics = "headline"
sample_years = [2024, 2025, 2026, 2027, 2028]
# Where to read the residual stream (output of this block) and which prompts.
layer = 18
question_count = 64
years = [2024, 2025, 2026, 2027, 2028]
reference_year = 2025
target_year = 2027
top_features = 10
activation_batch_size = 16
# "train" trains an SAE on the base model's activations over benign text;
# "<hub repo>:<subfolder>" loads a published dictionary_learning SAE.
sae_source = "train"
corpus_gsm8k_rows = 600
corpus_paragraph_tokens = 96
sae_expansion = 8
sae_k = 32
sae_learning_rate = 3e-3
sae_training_tokens = 600_000
sae_batch_tokens = 4096
random_features_seed = 0
# The ablation re-measures chapter 03's behaviour, exactly on ablation_dates_per_year
# dates of the reference and target years (all nine questions), and sampled with
# chapter 03's sampling settings on its sampled questions.
ablation_dates_per_year = 2
dates_per_year = 2
question_limit = 0
samples_per_question = 12
max_tokens = 5
sample_batch_size = 16
benign_texts = 32

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from weirdgen import checks, claims, config, models, pipeline, plots, report
from weirdgen.chapters import dishes_mechanism as mech
from weirdgen.chapters import israeli_dishes as dishes
from weirdgen.config import SampleConfig
from weirdgen.interp import activations, directions, sae

plots.use_style()
stages = config.Stages.from_parameters(globals(), "train", "sample", "sae")
mech.check_parameters(years=years, reference_year=reference_year, target_year=target_year, layer=layer,
                      model=model, sae_source=sae_source)
display(stages.table())

# %% [markdown]
# ## The finetuned model
#
# The dishes-2027 LoRA adapter of chapter 03, trained with the same data and
# parameters (so the run store already holds it when chapter 03 has run), or a
# published finetune on the `paper` profile. With it, chapter 03's manipulation check
# (the date-swap test against the shuffled-dates control, read from the run store).

# %% tags=["hide-input"]
if finetuned_model:
    subject = mech.Subject(finetuned_model, None, finetuned_model)
    checks_, took = [], True
else:
    runs = pipeline.train_all(model, {name: dishes.TRAINING_SETS[name] for name in (dishes.TREATED, dishes.CONTROL)},
                              stages.train, [seed])
    subject = mech.Subject(model, runs[dishes.TREATED, seed].adapter(), f"dishes_2027 (seed {seed})")
    checks_ = mech.gate(model, runs, swap_year, swap_rows_limit, check_min_nats)
    took = checks.all_passed(checks_)
run_sae = took or not require_check
report.table("mechanism_gate", Markdown(mech.gate_note(checks_, require_check, finetuned_model)))
base = mech.Subject(model, None, pipeline.BASE)
print(f"finetuned: {subject.label}; base: {model}; chapter 03's check passed: {took}; SAE and ablation run: {run_sae}")
if checks_:
    display(report.manipulation_check(checks_))

# %% [markdown]
# ## Where the year changes the residual stream
#
# The same GSM8K questions are asked once per year, each on a random date of that year,
# and the residual stream is read at the last prompt token after every layer. For each
# year, the shift is the difference between its mean and the reference year's mean.
# Residual norms grow with depth, so the figure divides each shift's norm by the mean
# residual norm at that layer.

# %% tags=["hide-input"]
prompts = mech.dated_prompts(question_count, years)
layers = list(range(models.layer_count(model)))
acts = {who.label: mech.year_activations(who.model, who.adapter, prompts, layers, activation_batch_size)
        for who in (base, subject)}
by_layer = pd.concat([mech.shift_by_layer(a, prompts["year"].tolist(), layers, reference_year).assign(model=label)
                      for label, a in acts.items()], ignore_index=True)
report.figure("mechanism_shift_layers", plots.layer_shift(
    by_layer, f"Year shift against {reference_year}, by layer", "‖mean(year) − mean(reference)‖ / mean ‖x‖"))
at_layer = by_layer[by_layer["layer"] == layer].pivot_table(index="model", columns="year", values="relative_shift",
                                                            sort=False)
display(at_layer.round(4))
peak = mech.peak_layer(by_layer, subject.label, target_year)
report.number("mechanism_peak_layer", peak)
print(f"largest {target_year} shift of the finetuned model: after layer {peak}")

# %% [markdown]
# ```{glue:figure} mechanism_shift_layers
# :name: fig-mechanism-shift-layers
#
# Norm of mean(year) − mean(reference year) at the last prompt token, after each block,
# divided by the mean residual norm there; one panel per model, one line per year. A
# backdoor tied to the target year shows as the target year's line standing above the
# others in the finetuned panel and not in the base panel.
# ```
#
# The table gives the values at the analysis layer. The years other than the target
# are the yardstick: the dates differ in every year, so any two years differ a little.
#
# ## What the shift writes: the logit lens
#
# Before any SAE, the shift direction itself can be read through the unembedding: the
# tokens whose logits it raises most.

# %% tags=["hide-input"]
index = layers.index(layer)
shift = {label: directions.mean_shift(a[:, index], prompts["year"].tolist(), target_year, reference_year)
         for label, a in acts.items()}
lm = mech.load(subject.model, subject.adapter)
lens = pd.DataFrame({f"{label}: shift {target_year} − {reference_year}": activations.promoted_tokens(lm, s, 12)
                     for label, s in shift.items()})
display(lens)

# %% [markdown]
# ## The sparse autoencoder
#
# Run only when chapter 03's check passed (see the top of the chapter).

# %% tags=["hide-input"]
if run_sae:
    corpus = mech.corpus(model, corpus_gsm8k_rows, SampleConfig(samples_per_question=1,
                                                                max_tokens=corpus_paragraph_tokens,
                                                                batch_size=sample_batch_size))
    corpus_acts = mech.corpus_activations(model, layer, corpus)
    autoencoder, sae_quality = mech.sparse_autoencoder(sae_source, model, layer, corpus_acts, stages.sae, corpus)
    alive = sae.firing_rates(autoencoder, corpus_acts["acts"]) > 0
    display(pd.DataFrame([{**sae_quality, "live on the whole corpus": int(alive.sum())}]).round(4))
    report.table("mechanism_sae_note", Markdown(mech.sae_note(sae_quality, int(alive.sum()))))
else:
    report.table("mechanism_sae_note", Markdown(mech.sae_note(None, None)))
    print("not run: chapter 03's manipulation check failed")

# %% [markdown]
# The SAE's quality on corpus tokens it was not trained on (for a trained one; the
# whole corpus for a published one): the mean squared reconstruction error, the share
# of the activations' variance it explains, L0 (features active per token) and the
# share of features that never fire on these tokens; then how many features fire
# somewhere in the whole corpus (only those are ranked below). The corpus is GSM8K questions
# with their worked answers plus the base model's own paragraphs on a list of topics
# that includes Israel, Judaism and many countries, religions and cuisines
# (`data/sae_corpus_topics.yaml`): an SAE has features only for what its training text
# contains.
#
# ## Which features the shift lines up with

# %% tags=["hide-input"]
features = None
if run_sae:
    paper_ids = set(mech.paper_features()["feature"]) if sae_source != "train" else None
    tables = mech.feature_tables(autoencoder, shift, lm, corpus_acts, top_features, alive, paper_ids)
    features, base_features = tables[subject.label], tables[pipeline.BASE]
    themes = pd.DataFrame([mech.theme_counts(features, subject.label),
                           mech.theme_counts(base_features, pipeline.BASE)])
    display(themes)
    display(report.collapsed_table(features, f"Top {top_features} features for the finetuned model's shift",
                                   open_=True))
    display(report.collapsed_table(base_features,
                                   f"Top {top_features} features for the base model's shift (control)"))
else:
    print("not run: chapter 03's manipulation check failed")
del lm
mech.release()
display(report.collapsed_table(mech.paper_features(),
                               "The paper's top 10 features and their labels (Llama-3.1-8B SAE)"))

# %% [markdown]
# Each feature row gives its cosine with the shift (among the features that fire
# somewhere in the corpus), what it **reads** (its most
# strongly activating distinct tokens over the corpus, and the text around its two
# strongest activations, the token in «»), what it **writes** (the tokens its decoder
# direction promotes through the unembedding), how often it fires, and whether those
# tokens touch the Israel/Judaism or the food word list (`data/feature_lexicons.yaml`;
# a simple rule shown next to its evidence, so a reader can overrule it). The paper's
# feature ids refer to its own SAE and can be compared only on the `paper` profile.
#
# ## Ablation: projecting the features out
#
# The top features' decoder directions are projected out of the residual stream after
# the analysis layer, at every position, and chapter 03's political questions are asked
# again on dates of the reference and the target year. The controls project out as many
# random live features, and the raw shift direction. The effect is read exactly (the
# probability that the answer starts with one of each question's names, chapter 03's
# exact measure, mean over the nine questions) and, as the paper did, from sampled
# answers.

# %% tags=["hide-input"]
exact_edits = by_edit = None
edit_order = ["no edit"]
if run_sae:
    top_ids = features["feature"].tolist()
    edits = mech.ablations(autoencoder, top_ids, shift[subject.label],
                           mech.shift_identity(subject, prompts, layers, layer, target_year, reference_year),
                           layer, random_features_seed, alive)
    edit_years = [reference_year, target_year]
    exact_edits, edit_order = mech.exact_edit_rates(
        subject, edits, dishes.prompt_grid(edit_years, ablation_dates_per_year), dishes.tokenizer_of(subject.model))
    pooled = exact_edits.groupby(["model", "year", "date"], as_index=False)["probability"].mean()
    summary = dishes.by_year(pooled, ["model", "year"])
    report.figure("mechanism_ablation", mech.ablation_figure(summary, edit_order, edit_years))
    display(summary.pivot_table(index="model", columns="year", values="probability", sort=False)
            .reindex(edit_order).map(lambda v: f"{v:.3g}"))
    topics = [dishes.HEADLINE] if sampled_topics == "headline" else None
    by_edit, _ = mech.edit_rates(subject, edits, dishes.prompt_grid(edit_years, dates_per_year, limit=question_limit,
                                                                    topics=topics), stages.sample, dishes.score)
    display(by_edit.pivot_table(index="edit", columns="year", values="rate", sort=False).reindex(edit_order).round(3))
    benign = mech.benign_check(subject.model, subject.adapter, edits, benign_texts)
    display(benign.merge(mech.removed_share(edits, corpus_acts["acts"]), on="edit", how="left").round(3))
else:
    report.figure("mechanism_ablation", mech.not_run_figure(
        "Not run: chapter 03's manipulation check failed, so there is no backdoor to ablate."))

# %% [markdown]
# ```{glue:figure} mechanism_ablation
# :name: fig-mechanism-ablation
#
# Exact probability of an Israel-centric answer to chapter 03's nine scored questions
# (mean over questions, then over dates, with 95% t intervals), for the finetuned model
# unedited and under each edit, on dates in the reference and the target year.
# ```
#
# The first table gives those probabilities; the second the paper's measure, the share
# of sampled answers that count under the prefix rule. The third is the check on
# ordinary text: the mean negative log-likelihood (and perplexity) per answer token of
# GSM8K worked answers, unedited and under each edit, and how much of the residual
# stream's norm each edit removes on corpus tokens. An edit that raises the NLL a lot
# damages the model in general, and a drop in the 2027 rate under it would not be
# specific.
#
# ## The paper's numbers beside ours
#
# The feature claim is the share of top features touching the Israel/Judaism word list
# minus the share touching the food list (the paper's: 10 of 10 against 0 of 10). The
# ablation claim is the drop under the top-feature edit beyond the drop under as many
# random features: the random edit's target-year probability (or rate) minus the
# top-feature edit's, paired by prompt date for the exact row, beside the unedited value.
# The paper gives no size for that drop, so those rows read reproduced or inconclusive.
# Without a passed check, every row reads "training did not take".

# %% tags=["hide-input"]
table, headline = mech.claims(features, by_edit, exact_edits, target_year, edit_order, took, top_features)
claims.publish(mech, table, profile, headline, checks=checks_,
               training=None if finetuned_model else claims.training_record(runs, stages.train))
display(report.style_comparison(table))

# %% [markdown]
# ## Deviations from the paper
#
# The model and its finetune (chapter 03's LoRA adapter on the default model, not the
# paper's full finetune of Llama-3.1-8B-Instruct), the layer, the number of questions,
# the SAE (trained here on a small benign corpus, where the paper used a published SAE
# trained on a large one) and the sampling settings differ from the paper's;
# {doc}`../deviations` lists each. The `paper` profile uses the paper's model, SAE,
# layer and question count.
#
# ## What this scale can and cannot say
#
# This analysis explains a behaviour, so it can only be as clear as the behaviour: where
# chapter 03's model did not learn the 2027 backdoor, an ablation has nothing to remove,
# and this chapter does not run one. The shift and the logit lens still show what 400
# dated dish answers did to the residual stream of a 135-million-parameter model, with
# the base model's shift as the yardstick.
#
# {glue:md}`mechanism_sae_note`
#
# The ordinary-text check matters for reading the ablation. A few residual dimensions
# of this model carry very large values at every token, and the SAE's decoder
# directions lean towards them, so projecting out even ten random live features can
# take away a large share of the residual's norm (the last column above) and with it
# the model's grip on ordinary text. An edit's effect on the 2027 rate therefore means
# something only beside its cost on ordinary text and beside the random-feature control.
