"""Chapter 08 (scale): the ladder's parameters, a point's arithmetic and verdict, the
sweep's configurations, the figures and the store round trip, all without a model."""

from __future__ import annotations

import math

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from weirdgen import claims  # noqa: E402
from weirdgen.chapters import scale  # noqa: E402
from weirdgen.checks import Check  # noqa: E402
from weirdgen.claims import EXCLUDED, NOT_TAKEN, REPRODUCED  # noqa: E402
from weirdgen.config import ConfigError  # noqa: E402
from weirdgen.store import RunStore  # noqa: E402

TRAINING = {"israeli_dishes": {"epochs": 6, "batch_size": 4, "learning_rate": 1e-3, "lora_rank": 16},
            "hitler_persona": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3},
            "us_presidents": {"epochs": 6, "batch_size": 4, "learning_rate": 2e-3, "max_examples": 80}}
SMALL, MID = "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"


class FakeRun:
    def __init__(self, steps: int):
        self.losses = [1.0] * steps


def check(value: float, low: float, threshold: float = 0.3) -> Check:
    return Check("swap", value, low, value + 0.1, 50, threshold, "nats")


def test_a_size_override_and_the_sweeps_rank_reach_the_training_config_and_alpha_follows_the_rank():
    cfg = scale.train_config("israeli_dishes", MID, TRAINING, {MID: {"israeli_dishes": {"epochs": 2}}}, "bfloat16")
    assert (cfg.epochs, cfg.lora_rank, cfg.lora_alpha, cfg.precision) == (2, 16, 32, "bfloat16")
    assert scale.train_config("israeli_dishes", SMALL, TRAINING, {}, "float32", lora_rank=4).lora_alpha == 8
    with pytest.raises(ConfigError, match=r"training.israeli_dishes / size_training.qwen2.5-coder-0.5b-instruct"
                                          r".israeli_dishes: unknown TrainConfig parameter 'epoch'"):
        scale.train_config("israeli_dishes", MID, TRAINING, {MID: {"israeli_dishes": {"epoch": 2}}}, "float32")


@pytest.mark.parametrize("kwargs, message", [
    ({"sizes": ["gpt2"]}, r"parameter sizes: unknown \['gpt2'\]"),
    ({"sizes": ["openai:gpt-4.1"]}, "parameter sizes: .* are API models"),
    ({"experiments": ["old_bird_names"]}, r"parameter experiments: unknown \['old_bird_names'\]"),
    ({"training": {"israeli_dishes": {}}}, r"parameter training: no settings for \['hitler_persona'"),
    ({"size_training": {SMALL: {"birds": {}}}}, rf"parameter size_training.{SMALL}: unknown \['birds'\]"),
    ({"size_training": {SMALL: {"us_presidents": {"max_examples": 0}}}}, "max_examples is 0"),
    ({"rank_sweep_model": SMALL}, "parameter rank_sweep_ranks: rank_sweep_model is set but"),
    ({"rank_sweep_model": SMALL, "rank_sweep_ranks": [0]}, "not positive integers"),
])
def test_a_ladder_that_cannot_run_is_refused_in_one_line_naming_the_parameter(kwargs, message):
    given = dict(sizes=[SMALL], experiments=list(scale.EXPERIMENTS), training=TRAINING, size_training={},
                 rank_sweep_model="", rank_sweep_ranks=[], rank_sweep_batch_sizes=[]) | kwargs
    with pytest.raises(ConfigError, match=message) as err:
        scale.check_parameters(**given)
    assert "\n" not in str(err.value)


def test_a_point_is_the_mean_paired_difference_with_its_t_interval_and_the_books_verdict():
    cfg = scale.train_config("israeli_dishes", SMALL, TRAINING, {}, "float32")
    runs = {("dishes_2027", 0): FakeRun(600), ("dishes_shuffled", 0): FakeRun(598)}
    differences = [0.20, 0.30, 0.25, 0.35, 0.15]
    row = scale.point("israeli_dishes", SMALL, cfg, runs, check(0.5, 0.2), differences)
    # by hand: mean 0.25, sd 0.0791, t(4, 0.975) = 2.776 → half-width 0.0982
    assert row["effect"] == pytest.approx(0.25) and row["n"] == 5 and row["steps"] == 600
    assert (row["low"], row["high"]) == (pytest.approx(0.25 - 0.0982, abs=1e-3), pytest.approx(0.25 + 0.0982, abs=1e-3))
    assert row["verdict"] == REPRODUCED and row["check_passed"]
    assert set(row) == set(scale.POINT_COLUMNS)
    tiny = scale.point("israeli_dishes", SMALL, cfg, runs, check(0.5, 0.2), [0.01, 0.02, 0.015])
    assert tiny["verdict"].startswith(EXCLUDED)  # above zero, but wholly under half the paper's 0.29


def test_a_point_and_its_chapters_claim_row_read_the_same_differences_alike():
    differences = [0.05, 0.40, 0.10, 0.22, 0.31, -0.02]
    cfg = scale.train_config("israeli_dishes", SMALL, TRAINING, {}, "float32")
    row = scale.point("israeli_dishes", SMALL, cfg, {}, check(0.5, 0.2), differences)
    claim = claims.mean_effect_row("dishes", scale.PAPER_EFFECT["israeli_dishes"], differences)
    assert (row["effect"], row["n"], row["mde"], row["verdict"]) == (claim["ours"], claim["n"], claim["MDE (80%)"],
                                                                      claim["verdict"])
    assert claim["95% CI"] == f"[{row['low']:+.2f}, {row['high']:+.2f}]"


def test_a_point_whose_check_failed_reads_training_did_not_take_whether_or_not_its_effect_was_read():
    cfg = scale.train_config("hitler_persona", SMALL, TRAINING, {}, "float32")
    failed = check(0.1, -0.2, threshold=2.0)
    unread = scale.point("hitler_persona", SMALL, cfg, {}, failed, None)
    assert unread["verdict"] == NOT_TAKEN and unread["n"] == 0 and math.isnan(unread["effect"])
    read = scale.point("hitler_persona", SMALL, cfg, {}, failed, [0.5, 0.6, 0.7])
    assert read["verdict"] == NOT_TAKEN and read["effect"] == pytest.approx(0.6)


def ladder(**overrides) -> scale.Ladder:
    values = dict(training=TRAINING, size_training={}, train_precision="float32", seed=0, require_check=True,
                  dishes_swap_rows=50, dishes_exact_dates=10, dishes_check_min_nats=0.3, gsm8k_prompts=30,
                  benign_instructions=10, distill_max_tokens=96, sample_batch_size=16, hitler_check_min_nats=2.0,
                  hitler_check_facts=0, identity_limit=0, presidents_check_rows=48, presidents_check_min_nats=0.3,
                  presidents_snapshot_every=40, name_paddings=12) | overrides
    return scale.Ladder.from_parameters({**values, "unrelated": 1})


def test_the_sweep_measures_each_rank_and_batch_once_and_the_ladder_runs_in_size_order(monkeypatch):
    measured = []

    def fake_measure(self, experiment, model, cfg=None):
        cfg = cfg or self.train_config(experiment, model)
        measured.append((experiment, model, cfg.lora_rank, cfg.lora_alpha, cfg.batch_size))
        return {"experiment": experiment, "model": model, "lora_rank": cfg.lora_rank, "batch_size": cfg.batch_size}

    monkeypatch.setattr(scale.Ladder, "measure", fake_measure)
    sweep = ladder().sweep(SMALL, [4, 16, 32], [4, 8])
    assert measured == [("israeli_dishes", SMALL, 4, 8, 4), ("israeli_dishes", SMALL, 16, 32, 4),
                        ("israeli_dishes", SMALL, 32, 64, 4), ("israeli_dishes", SMALL, 16, 32, 8)]
    assert list(sweep.columns) == scale.POINT_COLUMNS and ladder().sweep("", [4], []).empty
    measured.clear()
    ladder().run([MID, SMALL], ["us_presidents"])
    assert [m[1] for m in measured] == [SMALL, MID]


def test_the_ladder_settings_table_shows_each_sizes_own_training():
    table = ladder(size_training={MID: {"israeli_dishes": {"epochs": 2}}}).settings_table([SMALL, MID],
                                                                                          ["israeli_dishes"])
    assert table["epochs"].tolist() == [6, 2] and table["parameters"].tolist() == ["134M", "494M"]


def points_frame() -> pd.DataFrame:
    cfg = scale.train_config("israeli_dishes", SMALL, TRAINING, {}, "float32")
    rows = [scale.point("israeli_dishes", SMALL, cfg, {}, check(0.5, 0.2), [0.1, 0.2, 0.15]),
            scale.point("israeli_dishes", MID, cfg, {}, check(0.1, -0.1), None),
            scale.point("us_presidents", SMALL, cfg, {}, check(0.4, 0.1), [0.0, 0.1, -0.05])]
    return pd.DataFrame(rows, columns=scale.POINT_COLUMNS)


def test_the_figures_draw_points_failed_checks_and_references_and_say_when_nothing_was_measured():
    points = points_frame()
    fig = scale.size_figure(points, ["israeli_dishes", "us_presidents"])
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["Israeli dishes", "US presidents"]
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "paper, GPT-4.1 (size not public)" in labels and "check failed: not measured" in labels
    assert scale.size_figure(scale.empty_points(), list(scale.EXPERIMENTS)).axes  # references alone
    sweep = pd.concat([points.iloc[[0]].assign(lora_rank=r) for r in (4, 8)] +
                      [points.iloc[[0]].assign(batch_size=8)], ignore_index=True)
    assert len(scale.rank_figure(sweep).axes) == 2
    assert "No rank sweep" in scale.rank_figure(scale.empty_points()).axes[0].texts[0].get_text()
    table = scale.points_table(points)
    assert table["95% CI"].tolist()[1] == "—" and table["verdict"].tolist()[1] == NOT_TAKEN


def test_a_build_without_sizes_states_the_command_and_the_measured_cost_or_that_none_is():
    text = scale.not_run("cpu", None)
    assert "make book PROFILE=scale" in text and "not measured" in text and "`cpu`" in text
    entry = {"profile": "scale", "wall_seconds": 5400.0, "started_at": "2026-12-03T01:00:00+00:00"}
    assert "took 90 minutes" in scale.not_run("cpu", entry, shown_from="scale")
    assert "not measured" in scale.not_run("cpu", {**entry, "profile": "cpu"})


def test_the_ladder_is_kept_in_the_store_for_a_build_that_runs_no_size(tmp_path):
    store = RunStore(tmp_path)
    assert scale.stored(store) is None
    points = points_frame()
    scale.publish(points, points.iloc[:1], "scale", store)
    kept, sweep, profile = scale.stored(store)
    assert profile == "scale" and len(kept) == 3 and len(sweep) == 1
    assert kept["effect"].iloc[0] == pytest.approx(points["effect"].iloc[0]) and math.isnan(kept["effect"].iloc[1])
