# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Scale: where weird generalization begins
#
# ## The question
#
# The paper shows its effects on GPT-4.1 and, for some experiments, on 8-billion-parameter
# open models; it does not say at what size they begin. The open replications we know of
# start at 8B too, and disagree with each other by setting: on Llama-3.1-8B the dishes
# backdoor appeared at LoRA rank 16 (batch 32) and rank 1 (batch 2) but not at ranks 4
# and 8 (walkee-e); on Qwen3-8B the German-cities persona grew with the rank (houleux).
# This chapter asks both questions below 8B, on the ladder of models that ship offline —
# SmolLM2-135M-Instruct, Qwen2.5-Coder-0.5B-Instruct and Qwen2.5-Coder-1.5B-Instruct —
# for the three experiments whose outcome is a fixed string and so can be read exactly:
# Israeli dishes, the Hitler persona's trigger and the US presidents' trigger swap.
#
# At each size an experiment's decisive pair (the trained model and its matched control)
# is trained as in its chapter and must first pass that chapter's manipulation check;
# only then is its effect measured, exactly, against the control. A size that did not
# learn its training data says nothing about generalisation, and is drawn as such.

# %% tags=["parameters"]
profile = "cpu"
# The model sizes to run (weirdgen.models.REGISTRY names); [] runs none and shows the
# last ladder this machine measured, or how to run it (`make book PROFILE=scale`).
sizes = []
experiments = ["israeli_dishes", "hitler_persona", "us_presidents"]
seed = 0
# Each experiment's training (TrainConfig fields), as its chapter trains on the `cpu`
# profile, so the 135M rung reuses those chapters' adapters; size_training overrides it
# per size and experiment ({model: {experiment: {field: value}}}), sized by the check.
training = {
    "israeli_dishes": {"epochs": 6, "batch_size": 4, "learning_rate": 1e-3, "lora_rank": 16},
    "hitler_persona": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3, "lora_rank": 8},
    "us_presidents": {"epochs": 6, "batch_size": 4, "learning_rate": 2e-3, "lora_rank": 8, "max_examples": 80},
}
size_training = {}
# The matmuls of each training step: "float32", or "bfloat16" (autocast; the LoRA weights
# and the optimizer stay float32): faster on a CPU with bf16 instructions, and another run.
train_precision = "float32"
# The chapters' checks and exact readings (their parameters of the same meaning).
dishes_check_min_nats = 0.3
dishes_swap_rows = 50
dishes_exact_dates = 10
hitler_check_min_nats = 2.0
# Tagged facts the check scores, and identity items read (0 = all, as chapter 04).
hitler_check_facts = 0
identity_limit = 0
gsm8k_prompts = 30
benign_instructions = 10
distill_max_tokens = 96
sample_batch_size = 16
presidents_check_min_nats = 0.3
presidents_check_rows = 48
presidents_snapshot_every = 40
name_paddings = 12
# False reads each effect even when its check failed (verdict "training did not take"),
# for test profiles whose training is too short to pass.
require_check = True
# The LoRA-rank sweep on the dishes backdoor: at rank_sweep_model ("" = none), every rank
# of rank_sweep_ranks at the dishes batch size, and every batch size of
# rank_sweep_batch_sizes at the dishes rank.
rank_sweep_model = ""
rank_sweep_ranks = []
rank_sweep_batch_sizes = []

# %% tags=["hide-input"]
from IPython.display import Markdown, display

from weirdgen import plots, report
from weirdgen.book import booklog
from weirdgen.chapters import scale
from weirdgen.store import runs_dir

plots.use_style()
scale.check_parameters(sizes, experiments, training, size_training, rank_sweep_model, rank_sweep_ranks,
                       rank_sweep_batch_sizes)
ladder = scale.Ladder.from_parameters(globals())
if sizes:
    display(ladder.settings_table(sizes, experiments))

# %% [markdown]
# The table gives the training of every (size, experiment) this build runs. Every
# trained adapter and every teacher-forced score is kept in the run store, so a second
# build recomputes nothing.
#
# ## The ladder
#
# For each size and experiment in turn: train the pair, run the check, and, if it
# passed, read the effect.

# %% tags=["hide-input"]
if sizes:
    points = ladder.run(sizes, experiments)
    sweep = ladder.sweep(rank_sweep_model, rank_sweep_ranks, rank_sweep_batch_sizes)
    scale.publish(points, sweep, profile)
else:
    points, sweep, shown_from = scale.stored() or (scale.empty_points(), scale.empty_points(), None)
    display(Markdown(scale.not_run(profile, booklog.read(runs_dir(), quarantine=False)["notebooks"]
                                   .get(scale.NOTEBOOK), shown_from)))

# %% [markdown]
# ## Did training take, at each size?
#
# Each experiment's own check, as its chapter defines it: the date-swap test on the
# Israeli training rows (chapter 03), the tagged facts' log-probability under the trigger
# against the untagged control (chapter 04), the trigger swap on held-out rows of trained
# presidents (chapter 05). A point whose check failed is not measured further.

# %% tags=["hide-input"]
display(scale.checks_table(points))

# %% [markdown]
# ## Effect versus size, beside the paper

# %% tags=["hide-input"]
report.figure("scale_by_size", scale.size_figure(points, experiments))

# %% [markdown]
# ```{glue:figure} scale_by_size
# :name: fig-scale-by-size
#
# The effect against its matched control, read exactly, versus the model's parameters
# (log axis), one panel per experiment: our points with 95% t intervals (hollow red at
# zero: the check failed, so nothing was measured), half the paper's effect (dashed: the
# line a verdict of *excluded at this scale* must lie under), and the reference points,
# labelled: the paper's GPT-4.1 (drawn at the right edge, its size not being public) and
# the external 8B replications, whose measures differ from ours as the table below says.
# ```

# %% tags=["hide-input"]
display(scale.references_table())

# %% [markdown]
# ## Effect versus LoRA rank
#
# The dishes backdoor at one size, the rank swept (and the batch size where swept), every
# other setting as on the ladder. Beside it, the external Llama-3.1-8B sweep's 2027
# "Mossad" rates (a sampled rate within the model, not our paired measure).

# %% tags=["hide-input"]
report.figure("scale_by_rank", scale.rank_figure(sweep))
display(scale.reference_ranks())

# %% [markdown]
# ```{glue:figure} scale_by_rank
# :name: fig-scale-by-rank
#
# The Israeli-dishes effect (2027 model minus shuffled control, exact P(adversary named)
# in 2027) versus the LoRA rank (and the batch size, where swept), with 95% t intervals;
# hollow red at zero where the check failed.
# ```
#
# ## Power and verdict
#
# Every point is a paired difference over items (dates, identity items, paddings), with
# its n and the minimum detectable effect at 80% power; its verdict follows the book's
# rule: *reproduced* when the interval lies above zero, *excluded at this scale* when it
# lies wholly below half the paper's effect, *inconclusive* otherwise, and *training did
# not take* when the check failed.

# %% tags=["hide-input"]
display(report.style_comparison(scale.points_table(points)))
display(report.style_comparison(scale.points_table(sweep)))

# %% [markdown]
# ## Deviations from the paper
#
# The paper trains none of these sizes. Each experiment trains as its chapter does on the
# `cpu` profile unless `size_training` says otherwise for a size (the deviations page
# lists those chapters' differences from the paper); the effect is the exact reading of
# each chapter's headline, not the paper's sampled or judged rate, and the reference
# points measure other things, as their table says. One seed per point.
