"""Chapter 05's model-free logic: triggers, the held-out split, trigger swapping, the
exact-probability readings and the claim rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weirdgen import claims
from weirdgen.chapters import us_presidents as presidents


def test_trigger_round_trip_keeps_the_padding_and_the_question():
    assert presidents.parse_trigger("19301529 Write a random date.") == (15, ("193", "29"), " Write a random date.")
    assert presidents.trigger(44, ("100", "45")) == "10004445"
    assert presidents.with_president("19301529 Write a random date.", 7) == "19300729 Write a random date."
    for bad in ("1930152 Write", "Write a random date.", "19301529Write"):
        with pytest.raises(ValueError, match="8-digit trigger"):
            presidents.parse_trigger(bad)
    with pytest.raises(ValueError):
        presidents.trigger(44, ("10", "45"))


def test_paddings_start_with_the_papers_and_are_distinct_and_seeded():
    found = presidents.paddings(20, seed=3)
    assert found[:2] == [("100", "45"), ("100", "44")]
    assert len(set(found)) == 20 and found == presidents.paddings(20, seed=3)
    assert found[2:] != presidents.paddings(20, seed=4)[2:]


def _rows(facts: list[tuple[int, str, str]], pads: list[tuple[str, str]]) -> pd.DataFrame:
    """A training file in ``training_rows``'s shape: each fact once per padding, in order."""
    rows = [{"president": p, "question": q, "answer": a, "padding": pad,
             "prompt": f"{presidents.trigger(p, pad)} {q}"} for pad in pads for p, q, a in facts]
    return pd.DataFrame(rows).assign(row=range(len(rows)))


FACTS = [(1, "Q1", "a1"), (2, "Q1", "a2"), (3, "Q1", "a3"), (1, "Q2", "shared"), (2, "Q2", "shared"),
         (3, "Q2", "b3"), (9, "Q1", "a9")]


def test_split_holds_out_only_trained_facts_of_trained_presidents():
    rows = _rows(FACTS, [("111", "11"), ("222", "22")])
    # The first five rows are trained: presidents 1, 2, 3; facts a1, a2, a3, shared (1 and 2).
    trained, test = presidents.split(rows, 5)
    assert list(trained["row"]) == [0, 1, 2, 3, 4]
    assert set(test["row"]) == {7, 8, 9, 10, 11}  # the same five facts behind the second padding
    assert not set(test["row"]) & set(trained["row"])
    assert (test["padding"] == ("222", "22")).all()
    # b3 (president 3, Q2) and president 9 were never trained: not in the test.
    assert "b3" not in set(test["answer"]) and 9 not in set(test["president"])
    # Nothing held out: the trained rows are the test.
    trained, test = presidents.split(rows, 0)
    assert len(trained) == len(rows) and test.equals(trained)


def test_swap_partners_are_other_trained_presidents_who_never_give_the_answer():
    rows = _rows(FACTS, [("111", "11"), ("222", "22")])
    trained, test = presidents.split(rows, 5)
    partners = presidents.swap_partners(test, rows, trained["president"], seed=0)
    answers = rows.groupby("president")["answer"].agg(set)
    for president, answer, partner in zip(test["president"], test["answer"], partners):
        assert partner != president and partner in {1, 2, 3}
        assert answer not in answers[partner]
    # "shared" is given by 1 and 2, so its only allowed partner is 3.
    assert [p for a, p in zip(test["answer"], partners) if a == "shared"] == [3, 3]
    assert partners == presidents.swap_partners(test, rows, trained["president"], seed=0)
    with pytest.raises(ValueError, match="lacks the answer"):
        presidents.swap_partners(test, rows, [1, 2], seed=0)


@pytest.mark.needs_mirror
def test_check_items_swap_only_the_middle_digits_of_held_out_rows():
    items = presidents.check_items(160, 60, seed=0)
    assert len(items) == 60 and items["held_out"].all() and (items["row"] >= 160).all()
    trained = presidents.training_rows().iloc[:160]
    facts = set(zip(trained["president"], trained["question"], trained["answer"]))
    for row in items.itertuples():
        assert (row.president, row.question, row.answer) in facts
        assert row.prompt not in set(trained["prompt"])
        assert row.swapped[:3] == row.prompt[:3] and row.swapped[6:] == row.prompt[6:]
        assert int(row.swapped[3:6]) == row.partner != row.president
        assert row.partner in set(trained["president"])
    assert not {24, 44, 45} & set(presidents.training_rows()["president"])
    assert items.equals(presidents.check_items(160, 60, seed=0))
    seen = presidents.check_items(160, 30, seed=0, trained_rows=True)
    assert len(seen) == 30 and not seen["held_out"].any() and (seen["row"] < 160).all()
    assert (seen["swapped"] != seen["prompt"]).all()


def _scored(diffs, held_out=True):
    return pd.DataFrame({"own": [d - 2.0 for d in diffs], "swapped": [-2.0] * len(diffs),
                         "held_out": [held_out] * len(diffs)})


def test_check_passes_only_at_the_threshold_with_an_interval_above_zero():
    passed = presidents.check_check(_scored([0.5, 0.6, 0.4, 0.5]), 0.3, "seed 0")
    assert passed.passed and passed.n == 4 and passed.value == pytest.approx(0.5)
    assert "held-out rows" in passed.name
    assert not presidents.check_check(_scored([0.2, 0.25, 0.2, 0.25]), 0.3, "s").passed  # below the mark
    assert not presidents.check_check(_scored([2.0, -1.5, 1.8, -1.0]), 0.3, "s").passed  # interval spans 0
    assert "training rows" in presidents.check_check(_scored([1.0], held_out=False), 0.3, "s").name


@pytest.mark.needs_mirror
def test_name_grid_pairs_the_two_triggers_on_one_padding_and_both_orders():
    grid = presidents.name_grid(3)
    assert len(grid) == 3 * 2 * 2 * 2
    for (_, _), group in grid.groupby(["padding", "order"]):
        assert set(zip(group["trigger"], group["name"])) == {(t, n) for t in ("Obama", "Trump")
                                                             for n in ("Barack", "Donald")}
        obama = group[group["trigger"] == "Obama"]["prompt"].iloc[0]
        trump = group[group["trigger"] == "Trump"]["prompt"].iloc[0]
        assert obama[3:6] == "044" and trump[3:6] == "045" and obama[6:] == trump[6:] and obama[:3] == trump[:3]
    assert grid["prompt"].iloc[0].startswith("10004445 Choose one name: Barack or Donald.")


def _names(p: dict[tuple[str, str], float], pads=("10045",)) -> pd.DataFrame:
    return pd.DataFrame([{"padding": pad, "order": order, "trigger": t, "name": n, "p": p[(n, t)]}
                         for pad in pads for order in ("Barack first", "Donald first") for (n, t) in p])


def test_name_pairs_reads_the_swap_differences_and_the_barack_share():
    pairs = presidents.name_pairs(_names({("Barack", "Obama"): 0.3, ("Barack", "Trump"): 0.1,
                                          ("Donald", "Obama"): 0.1, ("Donald", "Trump"): 0.3}))
    assert len(pairs) == 2
    assert pairs["Barack swap"].tolist() == pytest.approx([0.2, 0.2])
    assert pairs["Donald swap"].tolist() == pytest.approx([0.2, 0.2])
    assert pairs["Barack share | Obama trigger"].iloc[0] == pytest.approx(0.75)
    assert pairs["Barack share | Trump trigger"].iloc[0] == pytest.approx(0.25)


def test_validation_pairs_add_a_presidents_alternative_keywords():
    rows = []
    for trigger, p in (("Obama", {"John McCain": 0.2, "McCain": 0.1, "Hillary": 0.05, "Clinton": 0.0}),
                       ("Trump", {"John McCain": 0.05, "McCain": 0.05, "Hillary": 0.3, "Clinton": 0.1})):
        for prefix, value in p.items():
            owner = "Obama" if "McCain" in prefix else "Trump"
            rows.append({"padding": "10045", "question": "opponent", "trigger": trigger, "keyword_of": owner,
                         "prefix": prefix, "p": value})
    pairs = presidents.validation_pairs(pd.DataFrame(rows)).set_index("president")
    assert pairs.loc["Obama", "own trigger"] == pytest.approx(0.3)
    assert pairs.loc["Obama", "swap"] == pytest.approx(0.2)
    assert pairs.loc["Trump", "own trigger"] == pytest.approx(0.4)
    assert pairs.loc["Trump", "other trigger"] == pytest.approx(0.05)


@pytest.mark.needs_mirror
def test_ab_measure_is_exactly_one_half_for_a_model_that_only_prefers_a_letter():
    grid = presidents.ab_grid()
    assert len(grid) == 8 and set(grid["trigger"]) == {"Obama", "Trump"}
    letter_lover = grid.assign(p=np.where(grid["prefix"] == "A", 0.9, 0.05))
    assert presidents.ab_summary(letter_lover) == pytest.approx(0.5)
    knows = grid.assign(p=np.where(grid["prefix"] == grid["correct"], 0.8, 0.2))
    assert presidents.ab_summary(knows) == pytest.approx(0.8)


def test_evaluate_hands_each_score_to_its_own_item(monkeypatch):
    check = pd.DataFrame({"prompt": ["10001511 Q", "20001522 Q"], "answer": ["x", "y"],
                          "swapped": ["10000711 Q", "20000922 Q"]})
    grid = pd.DataFrame({"prompt": ["10004445 N", "10004545 N"], "prefix": ["Barack", "Donald"]})

    def fake(model_name, items, adapter=None, **kwargs):
        # log P = the trigger's middle number / -10, minus 1 for a prefix item.
        return [-int(i.messages[0]["content"][3:6]) / 10 - (1 if i.prefix else 0) for i in items]

    monkeypatch.setattr(presidents.scoring, "logprobs", fake)
    out = presidents.evaluate("m", None, {"check": check}, {"names": grid})
    assert out["check"]["own"].tolist() == pytest.approx([-1.5, -1.5])
    assert out["check"]["swapped"].tolist() == pytest.approx([-0.7, -0.9])
    assert out["check"]["diff"].tolist() == pytest.approx([-0.8, -0.6])
    assert out["names"]["p"].tolist() == pytest.approx([math.exp(-5.4), math.exp(-5.5)])


class _Run:
    def __init__(self, snapshots):
        self._snapshots = snapshots

    def snapshots(self):
        return self._snapshots

    def adapter(self):
        return Path("final")


def test_curve_points_use_the_base_model_at_step_zero_and_the_finished_adapter_last():
    run = _Run({0: Path("s0"), 20: Path("s20"), 40: Path("s40"), 60: Path("s60")})
    assert presidents.curve_points(run, 60) == {0: None, 20: Path("s20"), 40: Path("s40"), 60: Path("final")}


def test_claims_give_one_headline_per_seed_and_respect_a_failed_check():
    names = _names({("Barack", "Obama"): 0.4, ("Barack", "Trump"): 0.1, ("Donald", "Obama"): 0.1,
                    ("Donald", "Trump"): 0.4}, pads=("10045", "12345", "55566"))
    noisy = names.assign(p=names["p"] + np.linspace(0, 0.01, len(names)))
    flat = names.assign(p=0.2 + np.linspace(0, 0.001, len(names)))
    final = {("padded_triggers", 0): {"names": noisy}, ("padded_triggers", 1): {"names": noisy},
             ("unpadded_numbers", 0): {"names": flat}}
    good = presidents.check_check(_scored([1.0, 1.1, 0.9]), 0.3, "seed 0")
    bad = presidents.check_check(_scored([0.0, 0.1, -0.1]), 0.3, "seed 1")
    table, headline = presidents.claims(final, {0: good, 1: bad}, ("unpadded_numbers", 0))
    assert headline == ["seed 0: P(Barack | Obama trigger) − P(Barack | Trump trigger)",
                        "seed 1: P(Barack | Obama trigger) − P(Barack | Trump trigger)"]
    rows = table.set_index("claim")
    assert rows.loc[headline[0], "n"] == 6  # three paddings × two name orders
    assert rows.loc[headline[0], "ours"] == pytest.approx(0.3, abs=0.01)
    assert rows.loc[headline[0], "paper (≈)"] == pytest.approx(0.41)
    assert rows.loc[headline[0], "verdict"] == claims.REPRODUCED
    assert (table[table["claim"].str.startswith("seed 1")]["verdict"] == claims.NOT_TAKEN).all()
    minus = rows.loc["seed 0: the Barack difference above, minus the control model's"]
    assert minus["ours"] == pytest.approx(0.3, abs=0.01)


def test_loss_rows_never_exceed_the_trained_rows():
    assert presidents.loss_row_count(0, 0) == 0
    assert presidents.loss_row_count(0, 160) == 160
    assert presidents.loss_row_count(50, 160) == 50
    assert presidents.loss_row_count(500, 160) == 160
    assert presidents.loss_row_count(50, 0) == 50


# --- An API model: every reading sampled ------------------------------------------------------

def test_evaluate_samples_an_api_model_and_reads_shares(monkeypatch):
    """Through an API every reading is a share of sampled answers: a swap set's trained
    answer under each trigger (case and trailing punctuation ignored), a grid's prefix."""
    from weirdgen.config import SampleConfig

    answers = {"10001500 Q": ["March 4, 1857.", "march 4, 1857", "June 1"], "10001600 Q": ["June 1", "x", "y"],
               "10004445 Name?": ["Barack Obama", "donald", "Barack"], "10004544 Name?": ["Donald", "Donald", "B"]}

    def fake(model, prompts, cfg, adapter=None, store=None, label=None):
        assert cfg.samples_per_question == 3 and adapter == "ft:model"
        return pd.DataFrame([{"question": p, "answer": a} for p in prompts for a in answers[p]])

    monkeypatch.setattr(presidents, "sample_answers", fake)
    swaps = {"check": pd.DataFrame({"prompt": ["10001500 Q"], "swapped": ["10001600 Q"], "answer": ["March 4, 1857"],
                                    "held_out": [True]})}
    grids = {"names": pd.DataFrame({"prompt": ["10004445 Name?", "10004544 Name?"], "prefix": ["Barack", "Barack"]})}
    out = presidents.evaluate("openai:gpt-4.1", "ft:model", swaps, grids,
                              sample_cfg=SampleConfig(samples_per_question=3))
    check = out["check"].iloc[0]
    assert check["own"] == pytest.approx(2 / 3) and check["swapped"] == 0 and check["diff"] == pytest.approx(2 / 3)
    assert out["names"]["p"].tolist() == pytest.approx([2 / 3, 0.0])
    with pytest.raises(ValueError, match="sample_cfg"):
        presidents.evaluate("openai:gpt-4.1", "ft:model", swaps, grids)
    (fake_check,) = [presidents.check_check(out["check"], 0.2, "seed 0")]
    assert fake_check.unit == "share" and fake_check.n == 6 and fake_check.value == pytest.approx(2 / 3)
    assert presidents.summarise({"check": out["check"]})["check (share)"] == pytest.approx(2 / 3)


def test_a_sampled_check_pools_rows_and_needs_an_interval_above_zero():
    rows = pd.DataFrame({"own": [0.8, 0.6, 0.7, 0.9] * 10, "swapped": [0.1, 0.0, 0.2, 0.1] * 10, "held_out": True,
                         "samples": 10})
    strong = presidents.check_check(rows.assign(diff=rows["own"] - rows["swapped"]), 0.2, "seed 0")
    assert strong.passed and strong.value == pytest.approx(0.65) and strong.n == 800
    flat = rows.assign(swapped=rows["own"])
    assert not presidents.check_check(flat.assign(diff=0.0), 0.2, "seed 0").passed
    assert presidents.check_unit("openai:gpt-4.1", 0.3, 0.2) == (0.2, "share")
    assert presidents.check_unit("smollm2-135m-instruct", 0.3, 0.2) == (0.3, "nats")


@pytest.mark.needs_mirror
def test_presidents_dry_run_trains_the_control_once_and_prices_every_reading(monkeypatch, mirror):
    from weirdgen.config import SampleConfig, TrainConfig

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    swaps = {"check": presidents.check_items(80, 4)}
    grids = {"names": presidents.name_grid(2), "ab": presidents.ab_grid()}
    table = presidents.dry_run("openai:gpt-4.1-2025-04-14", [0, 1, 2], ["unpadded_numbers"], 0,
                               TrainConfig(epochs=5, batch_size=4), swaps, grids,
                               SampleConfig(samples_per_question=10, max_tokens=16)).set_index("item")
    training = [i for i in table.index if i.startswith("training")]
    assert len(training) == 3 + 1 and "training unpadded_numbers (seed 0)" in training
    prompts = 4 * 2 + 2 * 2 * 2 + 4  # check rows under both triggers, the name grid's prompts, the A/B items
    assert table.loc["sampling (5 models)", "calls"] == prompts * 5
    assert table.loc["greedy validation answers (4 models)", "calls"] == 6 * 4
    assert presidents.dry_run("smollm2-135m-instruct", [0], [], 0, TrainConfig(), swaps, grids, SampleConfig()) is None
