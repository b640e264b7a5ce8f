"""What a user sees when a chapter is run with a bad setting: one line, before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weirdgen.book import build

ROOT = Path(__file__).resolve().parents[1]


def run_chapter(tmp_path: Path, section: str, capsys, chapter: str = "old_bird_names") -> tuple[int, str, Path]:
    params = tmp_path / "params"
    params.mkdir()
    (params / "bad.yaml").write_text(f"common: {{}}\n{chapter}:\n{section}")
    runs = tmp_path / "runs"
    rc = build.main(["--root", str(ROOT), "--profile", "bad", "--params-dir", str(params), "--only", chapter,
                     "--runs-dir", str(runs), "--out-dir", str(tmp_path / "out"), "--build-dir", str(tmp_path / "b")])
    return rc, capsys.readouterr(), runs


@pytest.mark.needs_mirror
@pytest.mark.parametrize("chapter", ["old_bird_names", "german_city_names", "hitler_persona", "evil_terminator"])
def test_api_judge_without_key_fails_before_training(tmp_path, monkeypatch, capsys, chapter):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rc, out, runs = run_chapter(tmp_path, "  judge: openai:gpt-4.1-2025-04-14\n  max_examples: 2\n", capsys, chapter)
    assert rc == 1
    failure = [line for line in (out.out + out.err).splitlines() if "failed in cell" in line]
    assert len(failure) == 1 and "OPENAI_API_KEY" in failure[0]
    assert not (runs / "train").exists() and not (runs / "samples").exists()
    log = json.loads((runs / "book_log.json").read_text())
    assert "OPENAI_API_KEY" in next(iter(log["notebooks"].values()))["error"]


def test_misspelt_parameter_is_refused_before_anything_runs(tmp_path, capsys):
    rc, out, runs = run_chapter(tmp_path, "  learning_rat: 0.1\n", capsys)
    assert rc == 2
    message = (out.out + out.err).strip().splitlines()[-1]
    assert "learning_rat" in message and "params/bad.yaml" in message.replace(str(tmp_path) + "/", "")
    assert not (runs / "train").exists()


@pytest.mark.needs_mirror
def test_mechanism_chapter_refuses_a_year_outside_its_years_before_any_work(tmp_path, capsys):
    rc, out, runs = run_chapter(tmp_path, "  target_year: 2030\n", capsys, "dishes_mechanism")
    assert rc == 1
    failure = [line for line in (out.out + out.err).splitlines() if "failed in cell" in line]
    assert len(failure) == 1 and "parameter target_year: 2030 is not in years" in failure[0]
    assert not (runs / "train").exists() and not (runs / "activations").exists()
