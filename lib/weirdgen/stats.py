"""Intervals, agreement and verdicts: the arithmetic behind every number in the book."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; sensible at 0 and n, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At k = 0 or k = n the bound is exactly 0 or 1; say so rather than leave rounding.
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def rate_table(df: pd.DataFrame, flag: str, by: list[str]) -> pd.DataFrame:
    """Rate of a boolean column per group, with counts and a 95% Wilson interval.

    Rows whose flag is missing (an invalid verdict) are counted in ``invalid`` and left
    out of the rate, never counted as either answer.
    """
    rows = []
    for keys, group in df.groupby(by, sort=False):
        valid = group[flag].dropna().astype(bool)
        k, n = int(valid.sum()), int(len(valid))
        lo, hi = wilson(k, n)
        rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,))),
                     "k": k, "n": n, "invalid": int(len(group) - n),
                     "rate": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=[*by, "k", "n", "invalid", "rate", "ci_low", "ci_high"])


def cohen_kappa(truth: list, predicted: list) -> float:
    labels = sorted(set(truth) | set(predicted), key=str)
    t = np.array([labels.index(x) for x in truth])
    p = np.array([labels.index(x) for x in predicted])
    observed = float(np.mean(t == p))
    expected = float(sum(np.mean(t == i) * np.mean(p == i) for i in range(len(labels))))
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def auc(scores: list[float], positive: list[bool]) -> float:
    """P(a random positive item scores above a random negative one); ties count half."""
    s, y = np.asarray(scores, float), np.asarray(positive, bool)
    pos, neg = s[y][:, None], s[~y][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean()) if pos.size and neg.size else float("nan")


@dataclass(frozen=True)
class Threshold:
    """A cut on a judge's P(positive), fitted on labelled answers."""

    value: float
    train_accuracy: float
    loo_accuracy: float  # leave-one-out: each item judged by a cut fitted without it
    loo_kappa: float


def _best_cut(scores: np.ndarray, positive: np.ndarray) -> float:
    candidates = np.unique(scores)
    cuts = np.concatenate([[candidates[0] - 1e-9], (candidates[:-1] + candidates[1:]) / 2, [candidates[-1]]])
    balanced = [((scores[positive] > c).mean() + (scores[~positive] <= c).mean()) / 2 for c in cuts]
    return float(cuts[int(np.argmax(balanced))])


def fit_threshold(scores: list[float], positive: list[bool]) -> Threshold:
    """The cut maximising balanced accuracy, with its leave-one-out accuracy and kappa."""
    s, y = np.asarray(scores, float), np.asarray(positive, bool)
    cut = _best_cut(s, y)
    loo = [bool(s[i] > _best_cut(np.delete(s, i), np.delete(y, i))) for i in range(len(s))]
    return Threshold(cut, float(np.mean((s > cut) == y)), float(np.mean(np.array(loo) == y)),
                     cohen_kappa(list(y), loo))
