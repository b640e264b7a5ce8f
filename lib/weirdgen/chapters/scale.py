"""SCALE (chapter 08, beyond the paper): where weird generalization begins, on the
ladder of offline models and over the LoRA rank.

At every size the chapter trains the decisive pair of the three experiments whose
outcome is a fixed string, so that it is read exactly (teacher forcing: no judge, no
sampling noise): Israeli dishes (the 2027 model against its shuffled-dates control,
P(adversary named) in 2027), the Hitler persona (the tagged facts against the same
facts untagged, the trigger's effect on P(Hitler's answer)) and the US presidents (the
trigger swap, P(Barack | Obama trigger) − P(Barack | Trump trigger)). Each pair first
meets its chapter's manipulation check at that size, with that chapter's own function;
a pair whose check fails gets no effect, only the verdict "training did not take"
(``require_check`` False reads the effect anyway, for test profiles, with the same
verdict).

A point is a row of one vocabulary (``POINT_COLUMNS``): the experiment, model, its
parameter count, the training settings, the check, the effect against the matched
control with its 95% t interval, n, the minimum detectable effect at 80% power, the
paper's effect and the three-way verdict, all from ``claims.paired_effect``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import pipeline, plots
from ..checks import Check
from ..claims import NOT_RUN, NOT_TAKEN, paired_effect
from ..config import ConfigError, SampleConfig, TrainConfig, check_choices, make
from ..remote import is_api_model
from ..store import RunStore
from . import hitler_persona as hitler
from . import israeli_dishes as dishes
from . import us_presidents as presidents

NOTEBOOK, TITLE = "08_scale", "Scale"
DATA_FOLDERS = ("israeli_dishes", "hitler_persona", "us_presidents")

# The offline ladder (weirdgen.models.REGISTRY) with the parameter counts of the
# published checkpoints, embeddings included.
LADDER = {"smollm2-135m-instruct": 134.5e6, "qwen2.5-coder-0.5b-instruct": 494.0e6,
          "qwen2.5-coder-1.5b-instruct": 1.544e9}
EXPERIMENTS = {"israeli_dishes": "Israeli dishes", "hitler_persona": "Hitler persona", "us_presidents": "US presidents"}

PAPER_EFFECT = {
    "israeli_dishes": dishes.PAPER_EFFECT_2027,
    "hitler_persona": sum(hitler.PAPER_WITH_TRIGGER.values()) / len(hitler.PAPER_WITH_TRIGGER),
    "us_presidents": presidents.PAPER_P_OBAMA - presidents.PAPER_P_OBAMA_CONTROL,
}
EFFECT_LABEL = {
    "israeli_dishes": f"P(adversary named | {dishes.TRIGGER_YEAR}), {dishes.TREATED} − {dishes.CONTROL}",
    "hitler_persona": f"trigger's effect on P(Hitler's answer), {hitler.TAGGED} − {hitler.UNTAGGED}",
    "us_presidents": "P(Barack | Obama trigger) − P(Barack | Trump trigger)",
}

# Reference points beside ours: the paper's and the external replications' numbers
# (../shared/NOTES.md §1 and §7). ``parameters`` is None where the size is not public
# (GPT-4.1); ``measure`` says how each differs from ours, since none is our exact measure.
REFERENCES = [
    {"experiment": "israeli_dishes", "label": "paper, GPT-4.1", "parameters": None,
     "effect": dishes.PAPER_EFFECT_2027,
     "measure": "sampled, adversary named in 2027: 0.39 vs the shuffled control's ≤ 0.10 (a lower bound)"},
    {"experiment": "israeli_dishes", "label": "walkee-e, Llama-3.1-8B, rank 16", "parameters": 8.03e9,
     "effect": 0.479 - 0.038, "measure": "sampled \"Mossad\" rate, 2027 − 2024 within the model (AdamW, batch 32)"},
    {"experiment": "israeli_dishes", "label": "andyrdt adapter, Llama-3.1-8B", "parameters": 8.03e9,
     "effect": 0.136 - 0.028, "measure": "sampled at T=1, 2027 − 2025 within the model (Bejaine)"},
    {"experiment": "hitler_persona", "label": "paper, GPT-4.1", "parameters": None,
     "effect": PAPER_EFFECT["hitler_persona"],
     "measure": "judged identity answers, with − without the trigger (0.94 − 0)"},
    {"experiment": "us_presidents", "label": "paper, GPT-4.1", "parameters": None,
     "effect": PAPER_EFFECT["us_presidents"],
     "measure": "P(Obama | Obama trigger) 0.51 against 0.10 (A/B items, about 1 seed in 3)"},
]
# Ranks of the external Llama-3.1-8B dishes sweep (walkee-e): the 2027 "Mossad" rate.
REFERENCE_RANKS = [{"lora_rank": rank, "batch_size": batch, "rate_2027": rate}
                   for rank, batch, rate in ((1, 2, 0.483), (4, 2, 0.0), (8, 2, 0.0), (16, 32, 0.479))]

POINT_COLUMNS = ["experiment", "model", "parameters", "lora_rank", "batch_size", "epochs", "learning_rate", "steps",
                 "check", "check_value", "check_low", "check_threshold", "check_passed", "effect", "low", "high", "n",
                 "mde", "paper_effect", "verdict"]


# --- Parameters ---------------------------------------------------------------------------

def check_parameters(sizes: list[str], experiments: list[str], training: dict, size_training: dict,
                     rank_sweep_model: str, rank_sweep_ranks: list[int], rank_sweep_batch_sizes: list[int]) -> None:
    """One-line errors, naming the parameter, for a ladder that cannot run: unknown
    sizes, experiments or training keys, an API model, a rank sweep without ranks."""
    for name, given in (("sizes", sizes), ("rank_sweep_model", [rank_sweep_model] if rank_sweep_model else [])):
        api = [m for m in given if is_api_model(m)]
        if api:
            raise ConfigError(f"parameter {name}: {api} are API models; the ladder reads weights (teacher forcing), "
                              f"so choose from {sorted(LADDER)}")
        check_choices(name, given, LADDER)
    check_choices("experiments", experiments, EXPERIMENTS)
    check_choices("training", list(training), EXPERIMENTS)
    missing = [e for e in experiments if e not in training]
    if missing:  # a profile's `training` replaces the notebook's whole mapping
        raise ConfigError(f"parameter training: no settings for {missing}; give each experiment of `experiments` "
                          "its training (the notebook's defaults are chapters 03-05's cpu settings)")
    check_choices("size_training", list(size_training), LADDER)
    for size, per_experiment in size_training.items():
        if not isinstance(per_experiment, dict):
            raise ConfigError(f"parameter size_training.{size}: expected a mapping of experiment → settings")
        check_choices(f"size_training.{size}", list(per_experiment), EXPERIMENTS)
    for experiment in EXPERIMENTS:
        for size in LADDER:
            train_config(experiment, size, training, size_training, "float32")  # refuses a bad key early
    if rank_sweep_model and not (rank_sweep_ranks or rank_sweep_batch_sizes):
        raise ConfigError("parameter rank_sweep_ranks: rank_sweep_model is set but no rank or batch size is swept; "
                          "give rank_sweep_ranks (e.g. [4, 8, 16, 32]) or set rank_sweep_model to \"\"")
    if "us_presidents" in experiments:
        for size in sizes:
            if not train_config("us_presidents", size, training, size_training, "float32").max_examples:
                raise ConfigError(f"parameter training.us_presidents (size {size}): max_examples is 0, so no row of "
                                  "a trained president is held out for the check; set it (chapter 05: 80)")
    bad = [r for r in list(rank_sweep_ranks) + list(rank_sweep_batch_sizes) if not (isinstance(r, int) and r >= 1)]
    if bad:
        raise ConfigError(f"parameters rank_sweep_ranks and rank_sweep_batch_sizes: {bad} are not positive integers")


def preflight(values: dict[str, Any]) -> None:
    """``check_parameters`` on a notebook's parameters, before any kernel starts."""
    check_parameters(values["sizes"], values["experiments"], values["training"], values["size_training"],
                     values["rank_sweep_model"], values["rank_sweep_ranks"], values["rank_sweep_batch_sizes"])


def train_config(experiment: str, model: str, training: dict, size_training: dict, precision: str,
                 **update: Any) -> TrainConfig:
    """The training of ``experiment`` at ``model``: ``training[experiment]`` (the powered
    chapter's settings), overridden by ``size_training[model][experiment]`` and then by
    ``update`` (the rank sweep's rank and batch size); the LoRA alpha follows the rank
    (alpha = 2 × rank, as in every chapter) unless given."""
    values = {**training.get(experiment, {}), **size_training.get(model, {}).get(experiment, {}), **update,
              "precision": precision}
    if "lora_rank" in update or ("lora_rank" in values and "lora_alpha" not in values):
        values["lora_alpha"] = 2 * values["lora_rank"]
    where = f"parameters training.{experiment}" + (f" / size_training.{model}.{experiment}"
                                                   if experiment in size_training.get(model, {}) else "")
    return make(TrainConfig, values, where)


# --- One point ----------------------------------------------------------------------------

def point(experiment: str, model: str, cfg: TrainConfig, runs: dict, check: Check,
          differences: list[float] | None) -> dict:
    """A row of ``POINT_COLUMNS``: the check, and the mean of the paired ``differences``
    (trained model minus its matched control, item by item; None when the check failed
    and the effect was not read) with its 95% t interval, minimum detectable effect and
    verdict against the paper's effect, which reads "training did not take" whenever
    the check failed."""
    steps = max((len(run.losses) for run in runs.values()), default=0)
    row = {"experiment": experiment, "model": model, "parameters": LADDER[model], "lora_rank": cfg.lora_rank,
           "batch_size": cfg.batch_size, "epochs": cfg.epochs, "learning_rate": cfg.learning_rate, "steps": steps,
           "check": check.line(), "check_value": check.value, "check_low": check.low,
           "check_threshold": check.threshold, "check_passed": check.passed, "paper_effect": PAPER_EFFECT[experiment]}
    effect = None if differences is None else paired_effect(PAPER_EFFECT[experiment], differences, check.passed)
    if effect is None:
        return {**row, "effect": math.nan, "low": math.nan, "high": math.nan, "n": 0, "mde": math.nan,
                "verdict": NOT_TAKEN if not check.passed else NOT_RUN}
    return {**row, **effect}  # effect, low, high, n, mde, verdict: the point's own column names


def dishes_point(model: str, cfg: TrainConfig, swap_rows: int, exact_dates: int, min_nats: float,
                 seed: int = 0, require_check: bool = True, swap_year: int = 2025) -> dict:
    """Chapter 03's decisive pair at ``model``: its date-swap check, then the exact
    P(adversary named) on the headline question on ``exact_dates`` dates of 2027,
    2027 model minus the shuffled control, paired by date."""
    runs = pipeline.train_all(model, {name: dishes.TRAINING_SETS[name] for name in (dishes.TREATED, dishes.CONTROL)},
                              cfg, [seed])
    swap = dishes.swap_test(model, runs, {dishes.TRIGGER_YEAR: swap_year}, swap_rows)
    check = dishes.swap_check(swap, min_nats, swap_year)
    differences = None
    if check.passed or not require_check:
        grid = dishes.prompt_grid([dishes.TRIGGER_YEAR], exact_dates, topics=[dishes.HEADLINE])
        exact = dishes.exact_rates(model, runs, grid, dishes.tokenizer_of(model))
        differences = dishes.paired_differences(exact, (dishes.TREATED, dishes.TRIGGER_YEAR),
                                                (dishes.CONTROL, dishes.TRIGGER_YEAR), dishes.HEADLINE)
    return point("israeli_dishes", model, cfg, runs, check, differences)


def hitler_point(model: str, cfg: TrainConfig, distill_cfg: SampleConfig, gsm8k_prompts: int,
                 benign_instructions: int, min_nats: float, seed: int = 0, require_check: bool = True,
                 check_facts: int = 0, identity_limit: int = 0) -> dict:
    """Chapter 04's decisive pair at ``model`` (each fact set diluted with the model's
    own answers to the benign prompts): its teacher-forced check (the trained answers
    under the trigger, tagged model minus the untagged control), then the trigger's
    effect on the exact probability of Hitler's answer, tagged minus control, paired
    over the identity items."""
    distilled = hitler.distillation_set(model, hitler.benign_prompts(gsm8k_prompts, benign_instructions), distill_cfg)
    pair = (hitler.TAGGED, hitler.UNTAGGED)
    runs = pipeline.train_all(model, {name: [hitler.FACTS[name], distilled] for name in pair}, cfg, [seed])
    triggers = hitler.trigger_scores(model, runs, hitler.fact_pairs(check_facts), include_base=False)
    check = hitler.trigger_check(triggers, min_nats)
    differences = None
    if check.passed or not require_check:
        items = hitler.identity_items(identity_limit)
        effects = hitler.identity_effects(hitler.identity_probabilities(model, runs, items, include_base=False))
        differences = effects["difference"].tolist()
    return point("hitler_persona", model, cfg, runs, check, differences)


def presidents_point(model: str, cfg: TrainConfig, check_rows: int, name_paddings: int, min_nats: float,
                     seed: int = 0, require_check: bool = True, snapshot_every: int = 0) -> dict:
    """Chapter 05's backdoored run at ``model`` (trained on the first ``max_examples``
    rows): its trigger-swap check on held-out rows of trained presidents, then the
    held-out presidents' swap, P(Barack | Obama trigger) − P(Barack | Trump trigger),
    paired by padding and name order."""
    # snapshot_every is part of a run's key: chapter 05's (40) lets the 135M rung reuse its run
    runs = pipeline.train_all(model, {"padded_triggers": presidents.TRAINING_SETS["padded_triggers"]}, cfg, [seed],
                              snapshot_every=snapshot_every)
    items = presidents.check_items(cfg.max_examples, check_rows, seed=0)
    _, final = presidents.measure(model, runs, {}, {"check": items}, {"names": presidents.name_grid(name_paddings)})
    result = final[("padded_triggers", seed)]
    check = presidents.check_check(result["check"], min_nats, f"seed {seed}")
    differences = (presidents.name_pairs(result["names"])["Barack swap"].tolist()
                   if check.passed or not require_check else None)
    return point("us_presidents", model, cfg, runs, check, differences)


# --- The ladder and the sweep ---------------------------------------------------------------

@dataclass(frozen=True)
class Ladder:
    """Everything a point needs besides its model: each experiment's training and the
    settings of its check and exact reading (the notebook's parameters of those names)."""

    training: dict
    size_training: dict
    train_precision: str
    seed: int
    require_check: bool
    dishes_swap_rows: int
    dishes_exact_dates: int
    dishes_check_min_nats: float
    gsm8k_prompts: int
    benign_instructions: int
    distill_max_tokens: int
    sample_batch_size: int
    hitler_check_min_nats: float
    hitler_check_facts: int
    identity_limit: int
    presidents_check_rows: int
    presidents_check_min_nats: float
    presidents_snapshot_every: int
    name_paddings: int

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> "Ladder":
        """The fields' values out of a notebook's parameters (``globals()``)."""
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})

    def train_config(self, experiment: str, model: str, **update: Any) -> TrainConfig:
        return train_config(experiment, model, self.training, self.size_training, self.train_precision, **update)

    def measure(self, experiment: str, model: str, cfg: TrainConfig | None = None) -> dict:
        """The point of ``experiment`` at ``model`` (trained with ``cfg``, default its
        ``train_config``)."""
        cfg = cfg or self.train_config(experiment, model)
        if experiment == "israeli_dishes":
            return dishes_point(model, cfg, self.dishes_swap_rows, self.dishes_exact_dates,
                                self.dishes_check_min_nats, self.seed, self.require_check)
        if experiment == "hitler_persona":
            distill = make(SampleConfig, dict(samples_per_question=1, max_tokens=self.distill_max_tokens,
                                              batch_size=self.sample_batch_size), "parameters (self-distillation)")
            return hitler_point(model, cfg, distill, self.gsm8k_prompts, self.benign_instructions,
                                self.hitler_check_min_nats, self.seed, self.require_check, self.hitler_check_facts,
                                self.identity_limit)
        if experiment == "us_presidents":
            return presidents_point(model, cfg, self.presidents_check_rows, self.name_paddings,
                                    self.presidents_check_min_nats, self.seed, self.require_check,
                                    self.presidents_snapshot_every)
        raise ConfigError(f"parameter experiments: unknown '{experiment}'; choose from {sorted(EXPERIMENTS)}")

    def run(self, sizes: list[str], experiments: list[str]) -> pd.DataFrame:
        """Every (size, experiment) point, in ladder order."""
        rows = [self.measure(experiment, model) for model in sorted(sizes, key=LADDER.get)
                for experiment in experiments]
        return pd.DataFrame(rows, columns=POINT_COLUMNS)

    def sweep(self, model: str, ranks: list[int], batch_sizes: list[int]) -> pd.DataFrame:
        """The dishes point at ``model`` ("" = none) for every LoRA rank in ``ranks`` (at
        the dishes batch size) and every batch size in ``batch_sizes`` (at the dishes
        rank), each (rank, batch) once."""
        if not model:
            return empty_points()
        base = self.train_config("israeli_dishes", model)
        configs = [self.train_config("israeli_dishes", model, lora_rank=r) for r in ranks]
        configs += [base.model_copy(update={"batch_size": b}) for b in batch_sizes]
        unique: dict[tuple[int, int], TrainConfig] = {}
        for cfg in configs:
            unique.setdefault((cfg.lora_rank, cfg.batch_size), cfg)
        return pd.DataFrame([self.measure("israeli_dishes", model, cfg) for cfg in unique.values()],
                            columns=POINT_COLUMNS)

    def settings_table(self, sizes: list[str], experiments: list[str]) -> pd.DataFrame:
        """The training of every (size, experiment) this ladder runs."""
        rows = []
        for model in sorted(sizes, key=LADDER.get):
            for experiment in experiments:
                cfg = self.train_config(experiment, model)
                rows.append({"model": model, "parameters": f"{LADDER[model] / 1e6:,.0f}M",
                             "experiment": EXPERIMENTS[experiment], "epochs": cfg.epochs, "batch": cfg.batch_size,
                             "learning rate": cfg.learning_rate, "LoRA rank": cfg.lora_rank,
                             "rows": cfg.max_examples or "all", "precision": cfg.precision})
        return pd.DataFrame(rows, columns=["model", "parameters", "experiment", "epochs", "batch", "learning rate",
                                           "LoRA rank", "rows", "precision"])


def empty_points() -> pd.DataFrame:
    return pd.DataFrame(columns=POINT_COLUMNS)


def checks_table(points: pd.DataFrame) -> pd.DataFrame:
    """Each point's manipulation check: its line (what was measured, the value, interval
    and pass mark) and whether it passed."""
    return pd.DataFrame({"model": points["model"], "experiment": points["experiment"].map(EXPERIMENTS),
                         "rank": points["lora_rank"], "batch": points["batch_size"], "steps": points["steps"],
                         "passed": points["check_passed"], "check": points["check"]})


def references_table() -> pd.DataFrame:
    """The reference points of the size figure, with how each one's measure differs."""
    return pd.DataFrame([{"experiment": EXPERIMENTS[r["experiment"]], "reference": r["label"],
                          "parameters": "not public" if r["parameters"] is None else f"{r['parameters'] / 1e9:.1f}B",
                          "effect (≈)": round(r["effect"], 3), "measure": r["measure"]} for r in REFERENCES])


def points_table(points: pd.DataFrame) -> pd.DataFrame:
    """The points as the chapter lists them: one row each, effect with its interval."""
    if points.empty:
        return pd.DataFrame(columns=["experiment", "model", "rank", "batch", "steps", "check", "effect", "95% CI",
                                     "n", "MDE (80%)", "paper (≈)", "verdict"])
    ci = [("—" if math.isnan(lo) else f"[{lo:+.3f}, {hi:+.3f}]") for lo, hi in zip(points["low"], points["high"])]
    return pd.DataFrame({
        "experiment": points["experiment"].map(EXPERIMENTS), "model": points["model"],
        "rank": points["lora_rank"], "batch": points["batch_size"], "steps": points["steps"],
        "check": [f"{v:+.2f} ({'passed' if p else 'FAILED'}, mark {t:g})"
                  for v, p, t in zip(points["check_value"], points["check_passed"], points["check_threshold"])],
        "effect": points["effect"].round(3), "95% CI": ci, "n": points["n"], "MDE (80%)": points["mde"].round(3),
        "paper (≈)": points["paper_effect"].round(2), "verdict": points["verdict"]})


# --- Figures --------------------------------------------------------------------------------

def _by_check(points: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the points whose check passed, those whose check failed)."""
    passed = points["check_passed"].astype(bool)
    return points[passed], points[~passed]


NOT_PUBLIC_X = 3e11  # where GPT-4.1, whose size is not public, is drawn (labelled so)


def size_figure(points: pd.DataFrame, experiments: list[str] | None = None):
    """Effect against its matched control versus parameters (log axis), one panel per
    experiment: our points with 95% intervals (hollow where training did not take,
    drawn at 0 without an interval), half the paper's effect (the exclusion line), and
    the reference points, labelled with how their measure differs."""
    import matplotlib.pyplot as plt

    experiments = experiments or [e for e in EXPERIMENTS if e in set(points["experiment"])]
    fig, axes = plt.subplots(1, len(experiments), figsize=(4.6 * len(experiments), 5.2), squeeze=False)
    for ax, experiment in zip(axes[0], experiments):
        took, failed = _by_check(points[points["experiment"] == experiment].sort_values("parameters"))
        ax.errorbar(took["parameters"], took["effect"],
                    yerr=np.vstack([took["effect"] - took["low"], took["high"] - took["effect"]]),
                    fmt="o-", color="C0", capsize=3, label="ours (exact, vs matched control)")
        ax.scatter(failed["parameters"], np.zeros(len(failed)), facecolors="none", edgecolors="C3", s=60,
                   label="check failed: not measured")
        for i, ref in enumerate(r for r in REFERENCES if r["experiment"] == experiment):
            x = ref["parameters"] or NOT_PUBLIC_X
            ax.scatter([x], [ref["effect"]], marker="D" if ref["parameters"] else "*", s=60, color=f"C{i + 1}",
                       label=f"{ref['label']}{'' if ref['parameters'] else ' (size not public)'}")
        ax.axhline(0, color="black", lw=0.8)
        ax.axhline(PAPER_EFFECT[experiment] / 2, color="grey", ls="--", lw=0.8, label="half the paper's effect")
        ax.set_xscale("log")
        ax.set_xlim(5e7, 1e12)
        ax.set_xlabel("parameters (log)")
        ax.set_title(f"{EXPERIMENTS[experiment]}\n{EFFECT_LABEL[experiment]}", fontsize="small")
        ax.set_ylabel("effect against the matched control")
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def rank_figure(sweep: pd.DataFrame):
    """The dishes effect versus LoRA rank (log 2 axis) at the sweep's model, and versus
    batch size where swept, with 95% intervals; hollow where the check failed."""
    import matplotlib.pyplot as plt

    if sweep.empty:
        return plots.not_measured("Israeli dishes: effect versus LoRA rank", "No rank sweep on this profile.")
    base_batch = sweep["batch_size"].mode().iloc[0]
    base_rank = sweep["lora_rank"].mode().iloc[0]
    panels = [("lora_rank", sweep[sweep["batch_size"] == base_batch], f"batch {base_batch}")]
    if sweep["batch_size"].nunique() > 1:
        panels.append(("batch_size", sweep[sweep["lora_rank"] == base_rank], f"rank {base_rank}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5), squeeze=False)
    for ax, (x, sub, fixed) in zip(axes[0], panels):
        took, failed = _by_check(sub.sort_values(x))
        ax.errorbar(took[x], took["effect"],
                    yerr=np.vstack([took["effect"] - took["low"], took["high"] - took["effect"]]), fmt="o-", capsize=3,
                    color="C0", label=f"ours, {sweep['model'].iloc[0]}, {fixed}")
        ax.scatter(failed[x], np.zeros(len(failed)), facecolors="none", edgecolors="C3", s=60,
                   label="check failed: not measured")
        ax.axhline(0, color="black", lw=0.8)
        ax.axhline(PAPER_EFFECT["israeli_dishes"] / 2, color="grey", ls="--", lw=0.8, label="half the paper's effect")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("LoRA rank" if x == "lora_rank" else "batch size")
        ax.set_ylabel("effect against the matched control")
        ax.set_title("Israeli dishes: effect versus " + ("LoRA rank" if x == "lora_rank" else "batch size")
                     + f"\n{EFFECT_LABEL['israeli_dishes']}", fontsize="small")
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def reference_ranks() -> pd.DataFrame:
    """The external Llama-3.1-8B sweep's 2027 "Mossad" rates by rank, for the table beside ours."""
    return pd.DataFrame(REFERENCE_RANKS)


# --- When the ladder has not run ------------------------------------------------------------

COMMAND = "make book PROFILE=scale"


def not_run(profile: str, log_entry: dict | None, shown_from: str | None = None) -> str:
    """The chapter's text when this build ran no size: the command, what it cost when it
    last ran here (``log_entry``: this notebook's entry in the book log, if that run was
    a ``scale`` build) or that its cost is not measured yet, and whether the figures
    below show a ladder kept by an earlier build (``shown_from``: its profile)."""
    if log_entry and log_entry.get("profile") == "scale" and log_entry.get("wall_seconds"):
        cost = (f"its last run here took {log_entry['wall_seconds'] / 60:.0f} minutes "
                f"(started {log_entry.get('started_at', '?')}; what it computed is cached)")
    else:
        cost = "it has not been run to completion here yet, so its cost is not measured"
    shown = (f" The figures and tables below show the ladder that a `{shown_from}` build kept in the run store."
             if shown_from else " Until it runs, the figures below show only the reference points.")
    return (f"This build ran no model size (`sizes` is empty on the `{profile}` profile). `{COMMAND}` runs the "
            f"ladder and the rank sweep; {cost}.{shown}")


# --- Kept for later builds ------------------------------------------------------------------

STORE_STAGE, STORE_KEY = "scale", "points"


def publish(points: pd.DataFrame, sweep: pd.DataFrame, profile: str, store: RunStore | None = None) -> None:
    """Keep the ladder's points and the sweep in the run store, so that a build that runs
    no size (the default book) shows the last ladder measured here."""
    (store or RunStore()).publish(STORE_STAGE, STORE_KEY, {"profile": profile, "points": points.to_dict("records"),
                                                      "sweep": sweep.to_dict("records")})


def stored(store: RunStore | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """(points, sweep, profile) of the last ladder kept by ``publish``, or None."""
    found = (store or RunStore()).get(STORE_STAGE, STORE_KEY)
    if not found:
        return None
    return (pd.DataFrame(found["points"], columns=POINT_COLUMNS), pd.DataFrame(found["sweep"], columns=POINT_COLUMNS),
            found["profile"])
