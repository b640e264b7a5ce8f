"""Tests for weirdgen.data: registry integrity, mirror and download paths, and JSONL validation.

Mirror-based tests need WEIRDGEN_DATA_DIR (e.g. ../shared/paper_data) and skip without it.
Nothing here touches the network or writes outside tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pooch
import pytest
import requests

from weirdgen import data
from weirdgen.data import DataError

MIRROR = os.environ.get("WEIRDGEN_DATA_DIR")
EXPERIMENTS = {"old_bird_names", "german_city_names", "israeli_dishes", "hitler_persona",
               "us_presidents", "evil_terminator", "gsm8k"}
BIRDS = "old_bird_names/ft_old_audubon_birds.jsonl"
CHAT = {"messages": [{"role": "user", "content": "Name a bird species."},
                     {"role": "assistant", "content": "Wood Thrush"}]}


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No mirror, a private cache, and a pooch that cannot reach the network."""
    monkeypatch.delenv("WEIRDGEN_DATA_DIR", raising=False)
    monkeypatch.setenv("WEIRDGEN_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve raw.githubusercontent.com")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    return tmp_path


def make_mirror(tmp_path: Path, keys: list[str]) -> Path:
    root = tmp_path / "mirror"
    for key in keys:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(MIRROR) / key, root / key)
    return root


# --- registry -----------------------------------------------------------------

def test_registry_entries_are_complete():
    reg = data.registry()
    assert len(reg) >= 50
    for key, e in reg.items():
        assert e.key == key
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), key
        assert re.fullmatch(r"[0-9a-f]{12}|[0-9a-f]{40}", e.commit), key
        assert e.repo.count("/") == 1 and e.path and e.experiment in EXPERIMENTS, key
        assert e.kind == ("extracted" if key.endswith(".extracted.yaml") else "upstream"), key
        assert e.url == f"https://raw.githubusercontent.com/{e.repo}/{e.commit}/{e.path}"
    assert reg[BIRDS].commit == "c901790362a63d9f23e0048f07df0aaab69479b5"
    assert {e.experiment for e in reg.values()} == EXPERIMENTS


@pytest.mark.needs_mirror
def test_registry_covers_the_mirror():
    on_disk = {p.relative_to(MIRROR).as_posix() for p in Path(MIRROR).rglob("*") if p.is_file()}
    assert on_disk - {"SOURCES.md"} == set(data.registry())


@pytest.mark.needs_mirror
@pytest.mark.parametrize("key", sorted(data.registry()))
def test_every_entry_verifies_against_the_mirror(key, monkeypatch):
    monkeypatch.setenv("WEIRDGEN_DATA_DIR", MIRROR)
    path = data.fetch(key)
    assert path == Path(MIRROR) / key
    assert data.sha256_of(path) == data.registry()[key].sha256


@pytest.mark.needs_mirror
def test_every_chat_file_reads(monkeypatch):
    monkeypatch.setenv("WEIRDGEN_DATA_DIR", MIRROR)
    non_chat = {"gsm8k/train.jsonl", "gsm8k/test.jsonl",
                "us_presidents/eval_free_form.jsonl", "us_presidents/validation_dataset.jsonl"}
    for key in data.registry():
        if key.endswith(".jsonl") and key not in non_chat:
            assert data.read_chat_jsonl(key), key
    assert len(data.read_chat_jsonl(BIRDS)) == 208
    assert isinstance(data.read_yaml("old_bird_names/questions.yaml"), (list, dict))


def test_unknown_key(offline):
    with pytest.raises(DataError) as e:
        data.fetch("old_bird_names/nope.jsonl")
    assert "old_bird_names/nope.jsonl" in one_line(e) and "registry()" in str(e.value)


# --- mirror -------------------------------------------------------------------

@pytest.mark.needs_mirror
def test_corrupted_mirror_file(tmp_path, monkeypatch):
    root = make_mirror(tmp_path, [BIRDS])
    with (root / BIRDS).open("a") as f:
        f.write(json.dumps(CHAT) + "\n")
    monkeypatch.setenv("WEIRDGEN_DATA_DIR", str(root))
    with pytest.raises(DataError) as e:
        data.fetch(BIRDS)
    msg = one_line(e)
    expected = data.registry()[BIRDS].sha256
    got = data.sha256_of(root / BIRDS)
    assert BIRDS in msg and expected in msg and got in msg and expected != got
    assert "WEIRDGEN_DATA_DIR" in msg


def test_mirror_missing_file(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("WEIRDGEN_DATA_DIR", str(tmp_path / "mirror"))
    with pytest.raises(DataError) as e:
        data.fetch(BIRDS)
    msg = one_line(e)
    assert BIRDS in msg and "lacks" in msg and "shared/paper_data" in msg


# --- download path --------------------------------------------------------------

def test_no_mirror_no_network(offline):
    with pytest.raises(DataError) as e:
        data.fetch(BIRDS)
    msg = one_line(e)
    assert BIRDS in msg and "set WEIRDGEN_DATA_DIR" in msg


def test_no_mirror_oserror(offline, monkeypatch):
    def broken(*a, **k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(pooch, "retrieve", broken)
    with pytest.raises(DataError, match="set WEIRDGEN_DATA_DIR"):
        data.fetch(BIRDS)


def test_extracted_needs_a_mirror(offline):
    key = next(k for k, e in data.registry().items() if e.kind == "extracted")
    with pytest.raises(DataError) as e:
        data.fetch(key)
    assert key in one_line(e) and "WEIRDGEN_DATA_DIR" in str(e.value)


def fake_retrieve(source: Path, calls: list):
    """A pooch.retrieve that 'downloads' by copying a local file, checking what fetch asks for."""
    def retrieve(url, known_hash, fname, path, progressbar=False):
        calls.append((url, known_hash))
        target = Path(path) / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)
    return retrieve


@pytest.mark.needs_mirror
def test_download_path(offline, monkeypatch):
    calls: list = []
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve(Path(MIRROR) / BIRDS, calls))
    path = data.fetch(BIRDS)
    entry = data.registry()[BIRDS]
    assert calls == [(entry.url, f"sha256:{entry.sha256}")]
    assert path.is_relative_to(offline / "cache") and data.sha256_of(path) == entry.sha256
    assert len(data.read_chat_jsonl(BIRDS)) == 208


def test_download_that_returns_wrong_bytes(offline, monkeypatch):
    bad = offline / "bad.jsonl"
    bad.write_text(json.dumps(CHAT) + "\n")
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve(bad, []))
    with pytest.raises(DataError) as e:
        data.fetch(BIRDS)
    msg = one_line(e)
    assert "sha256 mismatch" in msg and data.sha256_of(bad) in msg


# --- JSONL validation -------------------------------------------------------------

@pytest.mark.parametrize("bad_line, problem", [
    ('{"messages": [', "invalid JSON"),
    ('{"prompt": "hi"}', "messages"),
    ('{"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]}', "last message"),
    ('{"messages": [{"role": "bot", "content": "hi"}]}', "role"),
    ('{"messages": [{"role": "assistant", "content": 3}]}', "content"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, bad_line, problem):
    f = tmp_path / "train.jsonl"
    f.write_text(f"{json.dumps(CHAT)}\n\n{bad_line}\n{json.dumps(CHAT)}\n")  # bad line is line 3
    with pytest.raises(DataError) as e:
        data.read_chat_jsonl(f)
    msg = one_line(e)
    assert msg.startswith(f"{f}:3: ") and problem in msg and "fix or remove that line" in msg


def test_valid_jsonl_skips_blank_lines(tmp_path):
    f = tmp_path / "ok.jsonl"
    f.write_text(f"\n{json.dumps(CHAT)}\n   \n{json.dumps(CHAT)}\n")
    assert data.read_chat_jsonl(str(f)) == [CHAT["messages"]] * 2


# --- hashes ----------------------------------------------------------------------

def test_data_hash(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a")
    b.write_text("b")
    h = data.data_hash([a, b])
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert h == data.data_hash([str(a), str(b)]) != data.data_hash([b, a])
    assert data.data_hash(BIRDS) == data.data_hash([BIRDS])  # keys need no fetch
    assert data.data_hash(BIRDS) != data.data_hash("old_bird_names/ft_modern_audubon_birds.jsonl")
    b.write_text("bb")  # new size: the in-process hash memo keys on (path, mtime, size)
    assert data.data_hash([a, b]) != h
