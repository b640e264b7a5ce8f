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


# --- Power: the smallest effect an evaluation of a given size could see -------------------

Z80 = 0.8416212335729143  # one-sided normal quantile for 80% power


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95% interval for p1 − p2 from two Wilson intervals (Newcombe 1998, method 10):
    defined at 0 and n, unlike the normal (Wald) interval of a difference."""
    if n1 == 0 or n2 == 0:
        return (-1.0, 1.0)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def cohen_h(p1: float, p2: float) -> float:
    """Cohen's effect size for two proportions: the difference of their arcsine transforms."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def n_per_group(h: float, power: float = 0.8, z: float = Z95) -> float:
    """Per-group sample size for a two-sided test of two proportions at effect size ``h``
    (the arcsine approximation behind Cohen's power tables)."""
    from statistics import NormalDist

    return 2 * ((z + NormalDist().inv_cdf(power)) / abs(h)) ** 2


def mde_proportions(n1: int, n2: int, p_control: float, power: float = 0.8, z: float = Z95) -> float:
    """The smallest rise over ``p_control`` that two groups of n1 and n2 detect with
    ``power`` at the two-sided 5% level (arcsine approximation): a rate difference."""
    from statistics import NormalDist

    if n1 == 0 or n2 == 0:
        return float("nan")
    h = (z + NormalDist().inv_cdf(power)) * math.sqrt(1 / n1 + 1 / n2)
    phi = min(math.pi, 2 * math.asin(math.sqrt(min(max(p_control, 0.0), 1.0))) + h)
    return math.sin(phi / 2) ** 2 - p_control


def mean_interval(values) -> tuple[float, float, float]:
    """Mean of paired differences with its 95% t interval (mean, low, high)."""
    from scipy import stats as sps

    x = np.asarray(list(values), float)
    if len(x) == 0:
        return (float("nan"), float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float("-inf"), float("inf"))
    half = float(sps.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return (float(x.mean()), float(x.mean()) - half, float(x.mean()) + half)


def mde_mean(sd: float, n: int, power: float = 0.8) -> float:
    """The smallest mean of paired differences (standard deviation ``sd``, ``n`` pairs)
    a two-sided 5% t test detects with ``power`` (normal approximation)."""
    from statistics import NormalDist

    return float("nan") if n < 2 else (Z95 + NormalDist().inv_cdf(power)) * sd / math.sqrt(n)
