"""Manipulation checks: did the model learn its training data, before any claim about
what that learning generalised to?

A check is measured without a judge, on items of the training distribution (held-out
ones where the data allows): teacher-forced log-probabilities compared across a swap
(the trained answer under its own date or trigger vs under another one), or the share
of sampled answers that are strings of the training set. It passes when the measured
effect reaches the chapter's threshold (a parameter) and its 95% interval excludes
zero. A chapter whose check fails reports its generalisation verdicts as "training did
not take" (``claims``), never as "not reproduced".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from .claims import pick
from .config import ConfigError
from .stats import mean_interval, newcombe_difference


@dataclass(frozen=True)
class Check:
    name: str  # what was measured, in words
    value: float  # the effect: trained model against its reference
    low: float  # its 95% interval
    high: float
    n: int  # items (pairs) or samples behind it
    threshold: float  # the chapter's pass mark for ``value``
    unit: str  # "nats" or "share"

    @property
    def passed(self) -> bool:
        return bool(self.value >= self.threshold and self.low > 0)

    def line(self) -> str:
        mark = "passed" if self.passed else "FAILED"
        return (f"{mark}: {self.name}: {self.value:+.2f} {self.unit} (95% CI [{self.low:+.2f}, {self.high:+.2f}], "
                f"n = {self.n}; passes at ≥ {self.threshold:g} with an interval above 0)")

    def row(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def paired_check(name: str, trained: list[float], reference: list[float], threshold: float,
                 unit: str = "nats") -> Check:
    """The mean of paired differences ``trained[i] − reference[i]`` (e.g. log P of a
    trained answer under its own date minus under a swapped date), with a t interval."""
    if len(trained) != len(reference):
        raise ValueError(f"{name}: {len(trained)} trained values against {len(reference)} references")
    mean, low, high = mean_interval([a - b for a, b in zip(trained, reference)])
    return Check(name, mean, low, high, len(trained), threshold, unit)


def models_check(name: str, scores: pd.DataFrame, value: str, trained: str, control: str, threshold: float,
                 parameter: str, unit: str = "nats") -> Check:
    """``paired_check`` of two models' ``value`` row by row (``scores`` has one row per
    model and item, with ``model`` and ``row`` columns), trained minus control; a
    one-line error naming ``parameter`` when either model is missing."""
    by_model = scores.pivot_table(index="row", columns="model", values=value, aggfunc="mean")
    missing = [m for m in (trained, control) if m not in by_model.columns]
    if missing:
        raise ConfigError(f"parameter {parameter}: the manipulation check needs {missing}; add them")
    return paired_check(name, by_model[trained].tolist(), by_model[control].tolist(), threshold, unit)


def counts(rates: pd.DataFrame, where: dict, parameter: str) -> tuple[int, int]:
    """(k, n) of the rate-table row matching ``where`` (``claims.pick``), for a share
    check; a one-line error naming ``parameter`` when no row matches."""
    k, n = pick(rates, where)
    if not n:
        raise ConfigError(f"parameter {parameter}: the manipulation check needs {where}; add it")
    return k, n


def share_check(name: str, trained: tuple[int, int], reference: tuple[int, int], threshold: float) -> Check:
    """The difference of two shares (k of n each), e.g. answers naming a training-set
    string from the trained model minus from its control, with Newcombe's interval."""
    (k1, n1), (k2, n2) = trained, reference
    low, high = newcombe_difference(k1, n1, k2, n2)
    value = (k1 / n1 if n1 else 0.0) - (k2 / n2 if n2 else 0.0)
    return Check(name, value, low, high, n1 + n2, threshold, "share")


def all_passed(checks: list[Check]) -> bool:
    return bool(checks) and all(c.passed for c in checks)


def summary(checks: list[Check]) -> str:
    """One Markdown paragraph for the top of a chapter."""
    if not checks:
        return "**Did training take?** No check was run."
    head = ("**Training took**: every manipulation check passed." if all_passed(checks) else
            "**Training did not take**: a manipulation check failed, so this chapter's generalisation "
            "verdicts read \"training did not take\".")
    return head + "\n\n" + "\n".join(f"- {c.line()}" for c in checks)
