"""One plotting style for the whole book, and the figure shapes chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = "colorblind"


def use_style() -> None:
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.autolayout": True})


def rate_bars(table: pd.DataFrame, x: str, hue: str, title: str, ylabel: str,
              order: list | None = None, hue_order: list | None = None, paper: dict | None = None):
    """Grouped bars of ``rate`` with 95% interval whiskers; optional paper values as markers."""
    order = order or list(dict.fromkeys(table[x]))
    hue_order = hue_order or list(dict.fromkeys(table[hue]))
    width = 0.8 / len(hue_order)
    colors = sns.color_palette(PALETTE, len(hue_order))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(order)), 4))
    for j, h in enumerate(hue_order):
        sub = table[table[hue] == h].set_index(x).reindex(order)
        pos = np.arange(len(order)) + (j - (len(hue_order) - 1) / 2) * width
        err = np.vstack([sub["rate"] - sub["ci_low"], sub["ci_high"] - sub["rate"]])
        ax.bar(pos, sub["rate"], width, yerr=err, capsize=2, color=colors[j], label=str(h))
    if paper:
        xs = [i for i, o in enumerate(order) if o in paper]
        ax.scatter(xs, [paper[order[i]] for i in xs], marker="_", s=400, color="black", zorder=5,
                   label="paper (≈, read off its figure)")
    ax.set_xticks(np.arange(len(order)), [str(o) for o in order], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", ncols=2)
    return fig


def stacked_shares(table: pd.DataFrame, index: str, column: str, title: str, order: list | None = None):
    """Horizontal 100% bars: share of each category per group."""
    shares = pd.crosstab(table[index], table[column], normalize="index")
    if order:
        shares = shares.reindex(columns=[c for c in order if c in shares.columns])
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(shares) + 1.5))
    shares.plot.barh(stacked=True, ax=ax, color=sns.color_palette(PALETTE, shares.shape[1]), width=0.7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of answers")
    ax.set_ylabel("")
    ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def loss_curves(losses: pd.DataFrame, title: str):
    fig, ax = plt.subplots(figsize=(6, 3))
    for (label, seed), group in losses.groupby(["model", "seed"]):
        ax.plot(group["step"], group["loss"].rolling(5, min_periods=1).mean(), label=f"{label} (seed {seed})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (5-step mean)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def score_strip(table: pd.DataFrame, score: str, group: str, cut: float, title: str, xlabel: str):
    """Each item's score as a point, one row per group, with the decision cut."""
    fig, ax = plt.subplots(figsize=(6, 2.5))
    sns.stripplot(data=table, x=score, y=group, hue=group, ax=ax, jitter=0.25, legend=False)
    ax.axvline(cut, ls="--", color="black", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("label")
    ax.set_title(title)
    return fig


def family_bars(summary: pd.DataFrame, value: str, title: str):
    """One bar per (judge family, judge), e.g. kappa against the labelled sets."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(data=summary, x="family", y=value, hue="judge", ax=ax)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylim(min(-0.2, float(summary[value].min()) - 0.05), 1)
    ax.set_xlabel("")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=25)
    ax.legend(fontsize="small")
    return fig


def confusion_grid(matrices: dict[tuple[str, str], pd.DataFrame], per_row: int = 3):
    """Count heatmaps, one panel per (judge, judge family), ``per_row`` panels a row."""
    keys = list(matrices)
    rows = -(-len(keys) // per_row)
    fig, axes = plt.subplots(rows, per_row, squeeze=False, figsize=(4 * per_row, 3.4 * rows))
    several_judges = len({j for j, _ in keys}) > 1
    for ax, (j, f) in zip(axes.flat, keys):
        sns.heatmap(matrices[(j, f)], annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax)
        ax.set_title(f"{f}\n{j}" if several_judges else f, fontsize="small")
        ax.tick_params(labelsize="small")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return fig


def dose_lines(table: pd.DataFrame, value: str, baseline: float, title: str, ylabel: str):
    """``value`` against epoch, one line per learning rate, with the base model's level."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for lr, group in table.groupby("learning_rate"):
        ax.plot(group["epoch"], group[value], marker="o", label=f"learning rate {lr:g}")
    ax.axhline(baseline, ls="--", color="black", lw=1, label="base model")
    ax.set_xticks(sorted(table["epoch"].unique()))
    ax.set_xlabel("epochs of training")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def rate_lines(table: pd.DataFrame, x: str, hue: str, title: str, ylabel: str,
               marks: dict[str, float] | None = None, hue_order: list | None = None,
               y: str = "rate", band: bool = True):
    """``rate`` (or ``y``) against a numeric ``x`` per group, with 95% interval bands;
    ``marks`` draws labelled vertical lines (a trigger year, a trained year)."""
    hue_order = hue_order or list(dict.fromkeys(table[hue]))
    colors = sns.color_palette(PALETTE, len(hue_order))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for color, h in zip(colors, hue_order):
        sub = table[table[hue] == h].sort_values(x)
        ax.plot(sub[x], sub[y], marker="o", ms=3, color=color, label=str(h))
        if band and {"ci_low", "ci_high"} <= set(sub.columns):
            ax.fill_between(sub[x], sub["ci_low"], sub["ci_high"], color=color, alpha=0.15, lw=0)
    for label, at in (marks or {}).items():
        ax.axvline(at, color="grey", ls="--", lw=0.8)
        ax.annotate(label, (at, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize="x-small",
                    va="top", ha="right", color="grey")
    if y == "rate":
        ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def score_boxes(table: pd.DataFrame, x: str, y: str, hue: str, title: str, ylabel: str,
                order: list | None = None, hue_order: list | None = None):
    """Distributions of a 0–100 score per group: boxes with every score as a dot."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    sns.boxplot(table, x=x, y=y, hue=hue, order=order, hue_order=hue_order, ax=ax, fliersize=0,
                palette=PALETTE)
    sns.stripplot(table, x=x, y=y, hue=hue, order=order, hue_order=hue_order, ax=ax, dodge=True, size=3,
                  color="black", alpha=0.5, legend=False)
    ax.set_ylim(-2, 102)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def layer_shift(table: pd.DataFrame, title: str, ylabel: str):
    """``relative_shift`` against layer, one panel per model, one line per year."""
    panels = list(dict.fromkeys(table["model"]))
    years = sorted(table["year"].unique())
    colors = sns.color_palette(PALETTE, len(years))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for color, year in zip(colors, years):
            sub = table[(table["model"] == panel) & (table["year"] == year)].sort_values("layer")
            ax.plot(sub["layer"], sub["relative_shift"], marker="o", ms=2, color=color, label=str(year))
        ax.set_title(str(panel))
        ax.set_xlabel("layer (output of block)")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(title="year", fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle(title)
    return fig


def points_with_means(frame: pd.DataFrame, value: str, order: list[str], ylabel: str, title: str):
    """Per model (x, in ``order``, those present): every row's ``value`` as a jittered
    point, with the mean and its 95% t interval in black."""
    from . import stats

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    rng = np.random.default_rng(0)
    shown = [m for m in order if (frame["model"] == m).any()]
    for i, label in enumerate(shown):
        values = frame.loc[frame["model"] == label, value].to_numpy()
        mean, low, high = stats.mean_interval(values)
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=8, alpha=0.4)
        ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], fmt="o", color="black", capsize=4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(shown)), shown, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def not_measured(title: str, why: str):
    """A figure that says, in its panel, why its measurement was not made (e.g. it needs
    the model's weights and the model is an API model): the caption's figure exists on
    every profile, and no axis suggests a value."""
    fig, ax = plt.subplots(figsize=(7.5, 1.6))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.45, why, ha="center", va="center", wrap=True, fontsize="medium")
    return fig
