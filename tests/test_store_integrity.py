"""A run store that cannot lie: every defect a demanding user found, reproduced and fixed.

Integrity records (a substituted or truncated result is recomputed, a paid one is
refused), read-only stores, checks before any kernel starts, loader gaps, file modes,
and the leftovers of a killed build."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from weirdgen import claims, data, store
from weirdgen.book import booklog, build
from weirdgen.chapters import old_bird_names
from weirdgen.data import DataError
from weirdgen.store import RunStore, StoreError, cache_key
from weirdgen.train import _finished_epochs, _seal, verify_run

ROOT = Path(__file__).resolve().parents[1]


def key(**parts):
    return cache_key(stage="sample", model="m", question="Name a bird.", **parts)


def answers():
    return ["The Wood Thrush.", "The Carolina Parakeet."]


# ------------------------------------------------------------------ 1. a damaged result that is valid JSON


def test_a_substituted_result_that_is_still_valid_json_is_detected_and_recomputed(tmp_path, capsys):
    rs, k = RunStore(tmp_path), key()
    assert rs.cached("samples", k, answers) == answers()
    path = rs.path("samples", k)
    path.write_text(json.dumps(["garbage answer injected"]))  # a bare value, as the defect report did
    calls = []
    got = rs.cached("samples", k, lambda: calls.append(1) or answers())
    assert got == answers() and calls == [1]
    warning = capsys.readouterr().err.strip()
    assert warning.count("\n") == 0 and "recomputing samples result" in warning and str(path) in warning
    assert "question=Name a bird." in warning  # the settings it belongs to


def test_an_edited_value_inside_a_sound_looking_record_fails_its_hash(tmp_path, capsys):
    rs, k = RunStore(tmp_path), key()
    rs.put("samples", k, answers())
    rec = json.loads(rs.path("samples", k).read_text())
    rec["value"][0] = "an answer nobody sampled"
    rs.path("samples", k).write_text(json.dumps(rec))
    assert rs.get("samples", k) is None
    assert "does not match the sha256" in capsys.readouterr().err


def test_a_record_moved_under_another_key_or_of_the_wrong_shape_is_refused(tmp_path, capsys):
    rs = RunStore(tmp_path)
    rs.put("samples", key(seed=1), answers())
    os.replace(rs.path("samples", key(seed=1)), rs.path("samples", key(seed=2)))
    assert rs.get("samples", key(seed=2)) is None
    rs.put("samples", key(seed=3), {"not": "a list"})  # written whole, but not a samples result
    assert rs.get("samples", key(seed=3)) is None
    err = capsys.readouterr().err
    assert "it records samples/" in err and "shape of a samples result" in err


# ------------------------------------------------------------------ 2. unreadable files


@pytest.mark.parametrize("damage", [b"", b'{"format": 1, "stage": "samp', b"\xff\xfe not utf-8"])
def test_an_unreadable_result_is_named_and_recomputed(tmp_path, capsys, damage):
    rs, k = RunStore(tmp_path), key()
    rs.put("samples", k, answers())
    rs.path("samples", k).write_bytes(damage)
    assert rs.cached("samples", k, answers) == answers()
    err = capsys.readouterr().err
    assert "unreadable" in err and str(rs.path("samples", k)) in err
    assert rs.get("samples", k) == answers()  # and stored soundly again


def test_a_damaged_paid_result_is_an_error_naming_the_file_never_a_second_call(tmp_path):
    rs, k = RunStore(tmp_path), key(judge="openai:gpt-4.1")
    rs.cached("verdicts", k, lambda: {"LLM": 0.9, "19": 0.1}, paid=True)
    rs.path("verdicts", k).write_text("{trunc")
    calls = []
    with pytest.raises(StoreError) as info:
        rs.cached("verdicts", k, lambda: calls.append(1) or {"LLM": 1.0}, paid=True)
    message = str(info.value)
    assert not calls and "\n" not in message
    assert str(rs.path("verdicts", k)) in message and "pay" in message and "remove that file" in message


def test_a_truncated_tensor_file_is_recomputed(tmp_path, capsys):
    rs, k = RunStore(tmp_path), key(layer=3)
    expected = torch.arange(12.0).reshape(3, 4)
    rs.cached_tensors("activations", k, lambda: {"acts": expected.clone()})
    path = rs.path("activations", k, ".safetensors")
    path.write_bytes(path.read_bytes()[:20])
    again = rs.cached_tensors("activations", k, lambda: {"acts": expected.clone()})
    assert torch.equal(again["acts"], expected)
    assert "recomputing activations result" in capsys.readouterr().err


def test_a_damaged_epoch_is_trained_again_from_the_last_sound_one(tmp_path, capsys):
    run = tmp_path / "train" / "abc"
    for epoch in (1, 2, 3):
        folder = run / f"epoch-{epoch}"
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(bytes([epoch]) * 64)
        _seal(folder, epoch=epoch, losses=[1.0 / epoch])
    assert _finished_epochs(run) == 3 and verify_run(run) == []
    (run / "epoch-2" / "adapter_model.safetensors").write_bytes(b"truncated")
    assert [p.name for p, _ in verify_run(run)] == ["epoch-2"]
    assert _finished_epochs(run, report=True) == 1
    assert not (run / "epoch-2").exists() and not (run / "epoch-3").exists()
    assert "training again from epoch 2" in capsys.readouterr().err


def test_verify_lists_what_a_run_would_recompute(tmp_path, capsys):
    rs = RunStore(tmp_path)
    rs.put("samples", key(seed=1), answers())
    rs.put("samples", key(seed=2), answers())
    rs.path("samples", key(seed=2)).write_text("[]")
    assert store.main(["verify", "--runs-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"samples/{key(seed=2)}.json: no integrity record" in out and "1 result(s) would be recomputed" in out
    rs.path("samples", key(seed=2)).unlink()
    assert store.main(["verify", "--runs-dir", str(tmp_path)]) == 0


# ------------------------------------------------------------------ 3. read-only stores


def test_a_store_that_cannot_be_written_says_so_in_one_line(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(store, "atomic_write_text", read_only)
    with pytest.raises(StoreError, match="cannot write \\(Read-only file system\\).*WEIRDGEN_RUNS_DIR"):
        RunStore(tmp_path).put("samples", key(), answers())


def test_a_read_only_store_still_renders_a_book(tmp_path, monkeypatch, capsys):
    import pandas as pd

    rs = RunStore(tmp_path)
    table = pd.DataFrame([claims.comparison_row("a", 0.5, 1, 2)])
    claims.publish(old_bird_names, table, "cpu", ["a"], rs)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(store, "atomic_write_text", read_only)
    monkeypatch.setattr(booklog, "atomic_write_text", read_only)
    claims.publish(old_bird_names, table, "smoke", ["a"], rs)  # keeps the stored claims
    assert claims.summary(rs).query("chapter == 'Old bird names'")["profile"].tolist() == ["cpu"]
    booklog.update(tmp_path, entry={"name": "01_x", "status": "ok", "started_at": "t", "profile": "cpu"})
    booklog.update(tmp_path, entry={"name": "02_x", "status": "ok", "started_at": "t", "profile": "cpu"})
    err = capsys.readouterr().err
    assert err.count("is not writable") == 1 and "front page keeps this chapter's stored claims" in err


# ------------------------------------------------------------------ 4. checks before any kernel starts


def run_profile(tmp_path: Path, section: str, capsys, chapter: str = "old_bird_names"):
    params = tmp_path / "params"
    params.mkdir(exist_ok=True)
    (params / "bad.yaml").write_text(f"common: {{}}\n{chapter}:\n{section}")
    runs = tmp_path / "runs"
    rc = build.main(["--root", str(ROOT), "--profile", "bad", "--params-dir", str(params), "--only", chapter,
                     "--runs-dir", str(runs), "--out-dir", str(tmp_path / "out"), "--build-dir", str(tmp_path / "b")])
    out = capsys.readouterr()
    return rc, (out.out + out.err).strip().splitlines(), runs


@pytest.mark.needs_mirror
@pytest.mark.parametrize("section,expected", [
    ("  epochs: three\n", "parameter 'epochs' must be an integer like its default 3, got 'three'"),
    ("  learning_rate: -1\n", "TrainConfig parameter 'learning_rate': Input should be greater than 0"),
    ("  samples_per_question: 0\n", "SampleConfig parameter 'samples_per_question'"),
    ("  model: Qwen3-8B\n", "parameter 'model': model 'Qwen3-8B': not in the registry"),
    ("  judge: local:gpt-5\n", "parameter 'judge': 'gpt-5' is not an offline judge model"),
    ("  training_sets: [old_audubon, ancient_birds]\n", "parameter training_sets: unknown ['ancient_birds']"),
    ("  seeds: [0, one]\n", "parameter 'seeds' must be a list of integer values"),
    ("  model: Qwen/Qwen3-8b-typo\n", "parameter 'model': model 'Qwen/Qwen3-8b-typo' (Qwen/Qwen3-8b-typo): "),
])
def test_bad_parameters_fail_before_any_kernel_starts_naming_the_profile_and_section(tmp_path, capsys, section,
                                                                                     expected):
    rc, lines, runs = run_profile(tmp_path, section, capsys)
    assert rc == 2
    assert lines[-1].startswith("01_old_bird_names: ") and "params/bad.yaml [old_bird_names]" in lines[-1]
    assert expected in lines[-1]
    assert not runs.exists()  # no log, no calibration, no training: nothing ran


@pytest.mark.needs_mirror
def test_a_damaged_training_file_in_the_mirror_fails_before_anything_runs(tmp_path, capsys, monkeypatch, mirror):
    copy = tmp_path / "mirror"
    for path in mirror.rglob("*"):
        if path.is_file() and path.parts[len(mirror.parts)] in ("old_bird_names",):
            target = copy / path.relative_to(mirror)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    training = copy / "old_bird_names" / "ft_modern_american_birds.jsonl"
    training.write_bytes(training.read_bytes() + b'{"messages": []}\n')
    monkeypatch.setenv("WEIRDGEN_DATA_DIR", str(copy))
    rc, lines, runs = run_profile(tmp_path, "  epochs: 1\n", capsys)
    assert rc == 2 and "ft_modern_american_birds.jsonl: sha256 mismatch" in lines[-1] and not runs.exists()


# ------------------------------------------------------------------ 5. loader gaps


def test_an_empty_training_file_is_refused_by_name(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataError, match=f"{path}: no training rows"):
        data.read_chat_jsonl(path)


def test_a_byte_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    row = json.dumps({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})
    path.write_bytes((row + "\n").encode() + row.replace("A", "Ä").encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=f"{path}:2: not UTF-8 text \\(byte 0xc4"):
        data.read_chat_jsonl(path)


def test_a_missing_mirror_folder_is_reported_as_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("WEIRDGEN_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="WEIRDGEN_DATA_DIR=.*nowhere does not exist"):
        data.fetch("old_bird_names/questions.yaml")


# ------------------------------------------------------------------ 6. file modes


def test_store_files_honour_the_umask(tmp_path, monkeypatch):
    rs = RunStore(tmp_path)
    rs.put("samples", key(), answers())
    assert stat.S_IMODE(rs.path("samples", key()).stat().st_mode) == 0o666 & ~store._umask()
    monkeypatch.setattr(store, "FILE_MODE", 0o664)  # a shared store's group-writable umask 002
    rs.put("samples", key(seed=9), answers())
    assert stat.S_IMODE(rs.path("samples", key(seed=9)).stat().st_mode) == 0o664


# ------------------------------------------------------------------ 7. leftovers


def test_entries_a_killed_build_left_running_are_closed_at_the_next_build(tmp_path):
    booklog.update(tmp_path, entry={"name": "01_x", "status": "running", "started_at": "t1", "profile": "cpu"})
    assert booklog.close_stale(tmp_path) == ["01_x"]
    entry = booklog.read(tmp_path)["notebooks"]["01_x"]
    assert entry["status"] == "interrupted" and entry["history"][-1]["status"] == "interrupted"
    assert booklog.close_stale(tmp_path) == []
