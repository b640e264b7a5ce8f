"""The concepts with one owner: a judge's flag, the identity of a model in cache keys,
calibration that keeps its judge, the chapter registry, the user-error base class and
the build log."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pandas as pd
import pytest

import weirdgen
from weirdgen import claims, errors, models
from weirdgen.book import booklog
from weirdgen.chapters import CHAPTERS
from weirdgen.config import JudgeConfig
from weirdgen.judging import ChoiceJudge, RatingJudge, ReasoningJudge, Verdict, calibration, flags, judge_frame
from weirdgen.store import RunStore, cache_key

ROOT = Path(__file__).resolve().parents[1]
SMOL = "smollm2-135m-instruct"

# ------------------------------------------------------------------ flags


def ok(label, probs, score=None):
    return Verdict("ok", label, score, 1.0, probs)


def test_choice_flag_under_the_paper_rule_and_under_a_cut():
    j = ChoiceJudge("j", "{question}{answer}", ("A", "B"), positive="A")
    v = ok("B", {"A": 0.3, "B": 0.7})
    assert j.flag(v) is False  # the most probable answer is B
    assert j.flag(v, cut=0.25) is True and j.flag(v, cut=0.3) is False  # strictly above the cut
    assert j.flag(Verdict("low_mass", None, None, 0.01, {})) is None
    assert j.flag(Verdict("refusal", "R", 0.9, 1.0, {"A": 0.05, "R": 0.9})) is None  # a refusal is no answer


def test_rating_flag_reads_the_score_against_its_threshold():
    j = RatingJudge("r", "{question}{answer}", positive_from=50)
    assert j.flag(ok(None, {}, score=50.0)) is True and j.flag(ok(None, {}, score=49.9)) is False
    assert j.flag(ok(None, {}, score=60.0), cut=70) is False
    assert j.flag(Verdict("low_mass", None, None, 0.1, {})) is None
    assert RatingJudge("r", "t").flag(ok(None, {}, score=99.0)) is None  # no threshold: no flag


def test_reasoning_flag_counts_an_unparseable_answer_as_missing():
    j = ReasoningJudge("e", "{question}{answer}", ("EVIL", "GOOD"), positive="EVIL", max_tokens=16)
    assert j.flag(j.verdict({"text": "so... ANSWER: EVIL"})) is True
    assert j.flag(j.verdict({"text": "ANSWER: GOOD"})) is False
    assert j.flag(j.verdict({"text": "no answer line"})) is None


class TableBackend:
    concurrency = 1
    fingerprint = "table:v1"

    def __init__(self, by_answer: dict[str, dict[str, float]]):
        self.by_answer = by_answer

    def option_probs(self, prompt, options, numeric):
        return next(dict(p) for answer, p in self.by_answer.items() if prompt.endswith(answer))

    def complete(self, prompt, max_tokens):
        raise AssertionError("not used")


def test_flags_of_a_judged_frame_agree_with_the_judge_row_by_row(tmp_path):
    j = ChoiceJudge("j", "{question}\n{answer}", ("A", "B"), positive="A")
    table = {"x": {"A": 0.6, "B": 0.4}, "y": {"A": 0.2, "B": 0.8}, "z": {"A": 0.0, "B": 0.0}}
    samples = pd.DataFrame({"question": ["q"] * 3, "answer": ["x", "y", "z"]})
    judged = judge_frame(samples, [j], TableBackend(table), JudgeConfig(), RunStore(tmp_path))
    assert flags(judged, j).tolist() == [True, False, None]
    assert flags(judged, j, cut=0.1).tolist() == [True, True, None]


# ------------------------------------------------------------------ cache keys


def test_identity_keeps_the_keys_the_stages_always_had():
    """The recipes each stage wrote by hand before ``identity`` existed: the same hash."""
    fp = models.fingerprint(SMOL)
    adapter = Path("/anywhere/runs/train/abc123/epoch-3")
    with_adapter = cache_key(stage="sample", model=fp, adapter="abc123/epoch-3", messages=[], precision="float32")
    assert cache_key(stage="sample", **models.identity(SMOL, "float32", adapter=adapter), messages=[]) == with_adapter
    base = cache_key(stage="sample", model=fp, adapter=None, messages=[], precision="float32")
    assert cache_key(stage="sample", **models.identity(SMOL, "float32", adapter=None), messages=[]) == base
    training = cache_key(stage="train", model=fp, data="d", precision="float32")
    assert cache_key(stage="train", **models.identity(SMOL, "float32"), data="d") == training
    assert set(models.identity(SMOL)) == {"model", "precision"}


def test_the_precision_policy_has_one_owner(monkeypatch):
    monkeypatch.setattr(models.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert models.resolve_dtype("auto") == "float32"  # training and sampling on a CPU
    assert models.resolve_dtype("auto", judging=True) == "bfloat16"  # a judge on a bf16 CPU
    assert models.resolve_dtype("float16") == "float16"
    monkeypatch.setattr(models.torch.cuda, "is_available", lambda: True)
    assert models.resolve_dtype("auto") == "bfloat16"
    with pytest.raises(models.ModelError, match="dtype 'fp8'"):
        models.resolve_dtype("fp8")


def test_the_sae_key_names_its_precision():
    from weirdgen.chapters import dishes_mechanism as mech
    from weirdgen.config import SAEConfig

    seen = []

    class Store(RunStore):
        def cached_tensors(self, stage, key, compute):
            seen.append(key)
            raise StopIteration

    import torch

    for dtype in ("float32", "bfloat16"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(models, "working_dtype", lambda d="auto", dtype=dtype: dtype)
            with pytest.raises(StopIteration):
                mech.trained_sae(SMOL, 3, torch.zeros(20, 4), SAEConfig(), "corpus", Store(Path("/nonexistent")))
    assert len(set(seen)) == 2


# ------------------------------------------------------------------ calibration


def test_calibration_fits_the_cut_on_the_judge_it_hands_back(mirror, tmp_path):
    """Chapter 06 used to fit its cut on the judge without reasoning and apply it to the
    judge with reasoning; now the calibrated judge is the one applied."""

    class Backend:
        concurrency = 1
        fingerprint = "local-like"

        def option_probs(self, prompt, options, numeric):
            return {o: 1.0 / len(options) for o in options}

        def complete(self, prompt, max_tokens):
            self.budget = max_tokens
            return "ANSWER: EVIL"

    backend = Backend()
    fitted = calibration.calibrate("evil_intent", backend, JudgeConfig(), RunStore(tmp_path), limit=4,
                                   reasoning_tokens=7)
    assert fitted.judge.max_tokens == 7 and backend.budget == 7
    marked = fitted.mark(pd.DataFrame({"is_evil_terminator": ["EVIL"], "is_evil_terminator_p": [1.0],
                                       "is_evil_terminator_status": ["ok"]}))
    assert marked["is_evil_intent_paper_rule"].tolist() == [True]


# ------------------------------------------------------------------ chapters and claims


def test_every_chapter_module_names_an_existing_notebook_and_every_chapter_notebook_has_one():
    stems = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")}
    named = [chapter.NOTEBOOK for chapter in CHAPTERS]
    assert len(set(named)) == len(named) and set(named) <= stems
    pages = {"08_scale", "90_judge_report_card", "99_status"}  # pages that publish no front-page claims
    assert stems - pages == set(named)
    for chapter in CHAPTERS:
        source = (ROOT / "notebooks" / f"{chapter.NOTEBOOK}.py").read_text(encoding="utf-8")
        assert "claims.publish(" in source and chapter.TITLE


def test_publish_refuses_a_headline_that_is_not_in_the_table(tmp_path):
    from weirdgen.chapters import old_bird_names

    table = pd.DataFrame([claims.comparison_row("a", 0.5, 1, 2)])
    with pytest.raises(ValueError, match="01_old_bird_names: headline claims \\['b'\\]"):
        claims.publish(old_bird_names, table, "cpu", ["b"], RunStore(tmp_path))
    claims.publish(old_bird_names, table, "cpu", ["a"], RunStore(tmp_path))
    assert RunStore(tmp_path).get("claims", "01_old_bird_names")["rows"][0]["claim"] == "a"


# ------------------------------------------------------------------ errors


def test_every_user_facing_error_derives_from_user_error_and_reads_as_one_line():
    for info in pkgutil.walk_packages(weirdgen.__path__, "weirdgen."):
        importlib.import_module(info.name)
    found = {cls.__name__ for cls in _subclasses(errors.UserError)}
    assert {"ConfigError", "DataError", "ModelError", "ExtractError", "BuildError", "SAEError",
            "APIConfigError", "APIError", "FinetuneError", "JobsError"} <= found
    assert str(errors.UserError("parameter x:\n  bad;   fix it")) == "parameter x: bad; fix it"
    assert errors.one_line("a\n b", limit=3) == "a b" and errors.one_line("abcdef", limit=4) == "abc…"


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# ------------------------------------------------------------------ the build log


def test_the_status_page_reads_a_damaged_log_without_moving_it(tmp_path):
    (tmp_path / booklog.LOG_NAME).write_text("{not json", encoding="utf-8")
    assert booklog.read(tmp_path, quarantine=False) == {"notebooks": {}}
    assert (tmp_path / booklog.LOG_NAME).exists()
    assert booklog.read(tmp_path) == {"notebooks": {}}  # the runner moves it aside
    assert not (tmp_path / booklog.LOG_NAME).exists()
    assert len(list(tmp_path.glob(f"{booklog.LOG_NAME}.corrupt-*"))) == 1
