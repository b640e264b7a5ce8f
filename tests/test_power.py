"""The arithmetic of power and verdicts: intervals of a difference, minimum detectable
effects, the three-way verdict rule, manipulation checks and teacher-forced log-probs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from weirdgen import checks, claims, scoring, stats

# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
NEWCOMBE = [((56, 70, 48, 80), (0.0524, 0.3339)), ((9, 10, 3, 10), (0.1705, 0.8090)),
            ((6, 7, 2, 7), (0.0582, 0.8062)), ((5, 56, 0, 29), (-0.0381, 0.1926))]


@pytest.mark.parametrize("counts,expected", NEWCOMBE)
def test_difference_interval_matches_newcombes_table(counts, expected):
    low, high = stats.newcombe_difference(*counts)
    assert (round(low, 4), round(high, 4)) == expected


# Cohen (1988), Table 6.4.1: n per group, two proportions, two-sided alpha 0.05, power 0.80.
@pytest.mark.parametrize("h,n", [(0.2, 392), (0.5, 63), (0.8, 25)])
def test_sample_size_matches_cohens_power_table(h, n):
    assert round(stats.n_per_group(h)) == n


def test_minimum_detectable_effect_inverts_the_sample_size():
    for p0 in (0.0, 0.1, 0.5):
        mde = stats.mde_proportions(63, 63, p0)
        assert stats.cohen_h(p0 + mde, p0) == pytest.approx(0.5, abs=2e-3)
    # more samples, smaller detectable effect; none at all without samples
    assert stats.mde_proportions(400, 400, 0.1) < stats.mde_proportions(100, 100, 0.1)
    assert math.isnan(stats.mde_proportions(0, 10, 0.1))


def test_mean_mde_is_the_normal_power_formula():
    # 64 pairs of sd 1: (1.96 + 0.8416) / 8 = 0.350, Cohen's d = 0.35 for a paired test
    assert stats.mde_mean(1.0, 64) == pytest.approx(0.3502, abs=1e-4)
    mean, low, high = stats.mean_interval([1, 2, 3, 4])
    assert (mean, round(low, 3), round(high, 3)) == (2.5, 0.446, 4.554)  # t(3) = 3.182


@pytest.mark.parametrize("low,high,paper,expected", [
    (0.05, 0.40, 0.39, claims.REPRODUCED),       # interval above zero on the paper's side
    (-0.05, 0.15, 0.39, claims.EXCLUDED),        # upper end below half the paper's 0.39
    (-0.05, 0.25, 0.39, claims.INCONCLUSIVE),    # neither
    (-0.40, -0.05, -0.30, claims.REPRODUCED),    # a paper effect below zero
    (-0.10, 0.02, -0.30, claims.EXCLUDED),
    (0.05, 0.40, -0.30, claims.EXCLUDED),        # the wrong direction, wholly
    (-0.05, 0.25, float("nan"), claims.INCONCLUSIVE),
    (0.001, 0.003, 0.29, f"{claims.EXCLUDED}: {claims.SMALL}"),  # there, but not the paper's size
])
def test_three_way_verdict(low, high, paper, expected):
    assert claims.effect_verdict(low, high, paper) == expected


def test_verdict_says_training_did_not_take_and_when_the_judge_cannot_separate():
    assert claims.effect_verdict(0.1, 0.5, 0.39, took=False) == claims.NOT_TAKEN
    assert claims.effect_verdict(0.1, 0.5, 0.39, judge_kappa=0.2).startswith(claims.INCONCLUSIVE + ": the judge")
    assert claims.effect_verdict(0.1, 0.5, 0.39, judge_kappa=0.6) == claims.REPRODUCED


def test_effect_row_carries_n_mde_and_verdict():
    row = claims.effect_row("x", 0.39, (40, 100), (2, 100))
    assert row["ours"] == pytest.approx(0.38) and row["n"] == 100 and row["verdict"] == claims.REPRODUCED
    assert 0 < row["MDE (80%)"] < 0.2
    assert claims.effect_row("x", 0.39, (2, 100), (2, 100))["verdict"] == claims.EXCLUDED
    assert claims.effect_row("x", 0.39, (1, 8), (0, 8))["verdict"] == claims.INCONCLUSIVE
    assert claims.effect_row("x", 0.39, (0, 0), (0, 8))["verdict"] == claims.NOT_RUN
    paired = claims.mean_effect_row("y", 0.3, [0.01, -0.01, 0.02, -0.02] * 10)
    assert paired["verdict"] == claims.EXCLUDED and paired["n"] == 40


@pytest.mark.parametrize("low,high,paper,expected", [
    (0.0, 0.04, 0.0, claims.REPRODUCED), (0.3, 0.5, 0.0, claims.EXCLUDED),
    (0.05, 0.09, 0.0, claims.INCONCLUSIVE), (0.02, 0.10, 0.39, claims.EXCLUDED),
    (0.25, 0.35, 0.39, claims.INCONCLUSIVE),
])
def test_value_verdict(low, high, paper, expected):
    assert claims.value_verdict(low, high, paper) == expected


def test_a_check_passes_at_its_threshold_with_an_interval_above_zero():
    passing = checks.paired_check("swap", [1.0, 1.2, 0.9, 1.1], [0.0, 0.1, 0.0, 0.2], threshold=0.5)
    assert passing.passed and passing.value == pytest.approx(0.975) and passing.n == 4
    assert not checks.paired_check("swap", [1.0, 1.2, 0.9, 1.1], [0.0, 0.1, 0.0, 0.2], threshold=1.5).passed
    assert not checks.paired_check("noisy", [3.0, -2.0], [0.0, 0.0], threshold=0.1).passed  # interval spans 0
    share = checks.share_check("names", (30, 50), (2, 50), threshold=0.3)
    assert share.passed and share.value == pytest.approx(0.56)
    assert not checks.all_passed([]) and "FAILED" in checks.share_check("n", (3, 50), (2, 50), 0.3).line()
    with pytest.raises(ValueError, match="2 trained values against 1"):
        checks.paired_check("bad", [1.0, 2.0], [1.0], 0.1)


def _tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).eval()
    return SimpleNamespace(model=model, tokenizer=SimpleNamespace(pad_token_id=0), device=torch.device("cpu"))


def test_teacher_forced_logprobs_match_a_hand_computation_in_any_batch():
    lm = _tiny_lm()
    ignore = scoring.IGNORE
    examples = [([5, 6, 7, 8, 9], [ignore, ignore, 7, 8, 9]), ([3, 4, 11], [ignore, ignore, 11]),
                ([1, 2, 3, 4, 5, 6, 7], [ignore, ignore, ignore, ignore, ignore, 6, 7])]

    def by_hand(ids, labels):
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        return sum(float(logp[t - 1, ids[t]]) for t in range(1, len(ids)) if labels[t] != ignore)

    together = scoring.sequence_logprobs(lm, examples, batch_size=3)
    alone = [scoring.sequence_logprobs(lm, [e], batch_size=1)[0] for e in examples]
    for (ids, labels), (total, count), (single, _) in zip(examples, together, alone):
        assert total == pytest.approx(by_hand(ids, labels), abs=1e-4)
        assert single == pytest.approx(total, abs=1e-4)
        assert count == sum(lab != ignore for lab in labels)
