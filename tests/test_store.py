"""weirdgen.store: cache keys, the cached() contract, atomic writes and the runs folder.

Everything here writes only under tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from weirdgen import store
from weirdgen.config import SampleConfig, TrainConfig
from weirdgen.store import RunStore, atomic_write_text, cache_key, read_json, runs_dir, write_json

# ---------------------------------------------------------------- cache_key

def test_cache_key_is_short_hex():
    key = cache_key(stage="x", n=1)
    assert len(key) == 16
    assert int(key, 16) >= 0


def test_cache_key_ignores_keyword_order():
    assert cache_key(a=1, b="two", c=[3]) == cache_key(c=[3], b="two", a=1)


def test_cache_key_ignores_dict_order_at_every_depth():
    one = {"x": 1, "y": {"p": [1, 2], "q": {"m": 1, "n": 2}}}
    two = {"y": {"q": {"n": 2, "m": 1}, "p": [1, 2]}, "x": 1}
    assert list(one) != list(two)  # genuinely different insertion order
    assert cache_key(cfg=one) == cache_key(cfg=two)


@pytest.mark.parametrize("changed", [
    dict(stage="sample", model="m", data=["a", "b"], seed=0),        # value of one part
    dict(stage="train", model="m2", data=["a", "b"], seed=0),        # another part
    dict(stage="train", model="m", data=["b", "a"], seed=0),         # list order counts
    dict(stage="train", model="m", data=["a", "b"], seed=1),         # a number
    dict(stage="train", model="m", data=["a", "b"], seed="0"),       # a type
    dict(stage="train", model="m", data=["a", "b"], seed=0, extra=None),  # an added part
    dict(stage="train", model="m", data=["a", "b"]),                 # a removed part
    dict(stage="train", modle="m", data=["a", "b"], seed=0),         # a renamed part
])
def test_cache_key_changes_when_any_part_changes(changed):
    base = dict(stage="train", model="m", data=["a", "b"], seed=0)
    assert cache_key(**changed) != cache_key(**base)


def test_cache_key_tuple_and_list_are_the_same_input():
    assert cache_key(x=(1, 2, 3)) == cache_key(x=[1, 2, 3])


def test_cache_key_handles_pydantic_configs():
    a = TrainConfig(epochs=2, learning_rate=1e-3)
    b = TrainConfig(learning_rate=1e-3, epochs=2)
    assert cache_key(config=a) == cache_key(config=b)
    # A config hashes as its values, so the same values in a plain dict give the same key.
    assert cache_key(config=a) == cache_key(config=a.model_dump())
    assert cache_key(config=a) != cache_key(config=TrainConfig(epochs=3, learning_rate=1e-3))
    assert cache_key(config=a) != cache_key(config=TrainConfig(epochs=2, learning_rate=2e-3))
    assert cache_key(config=a) != cache_key(config=TrainConfig(epochs=2, learning_rate=1e-3,
                                                                  lora_targets=("q_proj",)))
    # Nested inside other structures too.
    assert cache_key(parts=[{"cfg": a}]) == cache_key(parts=[{"cfg": b}])
    assert cache_key(config=SampleConfig(seed=1)) != cache_key(config=SampleConfig(seed=2))


def test_cache_key_handles_paths():
    p = Path("data") / "x.jsonl"
    assert cache_key(path=p) == cache_key(path=Path("data/x.jsonl"))
    assert cache_key(path=p) == cache_key(path=str(p))
    assert cache_key(path=p) != cache_key(path=Path("data/y.jsonl"))
    assert cache_key(paths=[p, {"k": p}]) == cache_key(paths=[str(p), {"k": str(p)}])


def test_cache_key_pinned_value():
    """Keys must not change silently between versions: that would orphan every stored result."""
    parts = {"stage": "train", "data": ["a", "b"], "config": {"lr": 0.001, "n": 2}, "seed": 0}
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    expected = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    assert expected == "5739e18050f59620"
    assert cache_key(**parts) == expected


def test_cache_key_is_stable_across_processes(tmp_path):
    """No dependence on Python's per-process hash randomisation or on insertion order."""
    code = ("from pathlib import Path; from weirdgen.config import TrainConfig; "
            "from weirdgen.store import cache_key; "
            "print(cache_key(b={'y': 1, 'x': [2, 1]}, a=TrainConfig(epochs=2), p=Path('q/r')))")
    keys = set()
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        keys.add(out.stdout.strip())
    assert keys == {cache_key(a=TrainConfig(epochs=2), p=Path("q/r"), b={"x": [2, 1], "y": 1})}


# ---------------------------------------------------------------- RunStore.cached

def test_cached_computes_once_then_reuses(tmp_path):
    rs = RunStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"answers": ["a", "b"], "n": 2}

    first = rs.cached("results", "k1", compute)
    second = rs.cached("results", "k1", compute)
    assert len(calls) == 1
    assert first == second == {"answers": ["a", "b"], "n": 2}
    assert rs.path("results", "k1") == tmp_path / "results" / "k1.json"
    assert read_json(tmp_path / "results" / "k1.json")["value"] == first


def test_cached_reuses_across_store_objects(tmp_path):
    RunStore(tmp_path).cached("s", "k", lambda: [1, 2, 3])

    def boom():
        raise AssertionError("recomputed a stored result")

    assert RunStore(tmp_path).cached("s", "k", boom) == [1, 2, 3]


def test_cached_different_key_or_stage_recomputes(tmp_path):
    rs = RunStore(tmp_path)
    calls = []

    def compute(value):
        def f():
            calls.append(value)
            return value
        return f

    assert rs.cached("s", "k1", compute(1)) == 1
    assert rs.cached("s", "k2", compute(2)) == 2
    assert rs.cached("t", "k1", compute(3)) == 3
    assert rs.cached("s", "k1", compute(4)) == 1
    assert calls == [1, 2, 3]


def test_cached_returns_the_stored_form_both_times(tmp_path):
    """The first call returns what later calls will read back (JSON), not the raw object."""
    rs = RunStore(tmp_path)
    first = rs.cached("s", "k", lambda: {"t": (1, 2), "p": Path("a/b")})
    second = rs.cached("s", "k", lambda: None)
    assert first == second == {"t": [1, 2], "p": "a/b"}


def test_cached_failed_compute_stores_nothing(tmp_path):
    rs = RunStore(tmp_path)

    def fail():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        rs.cached("s", "k", fail)
    assert not rs.path("s", "k").exists()
    assert rs.cached("s", "k", lambda: 7) == 7


# ---------------------------------------------------------------- atomic writes

def _leftovers(folder: Path, target: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p != target]


def test_atomic_write_creates_parents_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write_text(target, "héllo ✓")
    assert target.read_text(encoding="utf-8") == "héllo ✓"
    atomic_write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert _leftovers(target.parent, target) == []


def test_atomic_write_failed_replace_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old content")

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        atomic_write_text(target, "new content")
    assert target.read_text() == "old content"
    assert _leftovers(tmp_path, target) == []


class _HalfWriter:
    """A file object whose write() puts half the text down and then fails."""

    def __init__(self, f):
        self._f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()
        return False

    def write(self, text):
        self._f.write(text[: len(text) // 2])
        self._f.flush()
        raise KeyboardInterrupt  # the harshest case: a BaseException mid-write

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_atomic_write_interrupted_write_never_leaves_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old content")
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: _HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new content that is long enough to be cut in half")
    assert target.read_text() == "old content"
    assert _leftovers(tmp_path, target) == []

    fresh = tmp_path / "fresh.txt"
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(fresh, "never fully written")
    assert not fresh.exists()
    assert _leftovers(tmp_path, target) == []


def test_write_json_roundtrip(tmp_path):
    value = {"cfg": TrainConfig(epochs=2), "p": Path("x/y"), "t": (1, 2.5), "s": "ü"}
    write_json(tmp_path / "v.json", value)
    back = read_json(tmp_path / "v.json")
    assert back["cfg"]["epochs"] == 2
    assert back["cfg"]["lora_targets"] == list(TrainConfig().lora_targets)
    assert back["p"] == "x/y" and back["t"] == [1, 2.5] and back["s"] == "ü"


# ---------------------------------------------------------------- runs_dir

def test_runs_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIRDGEN_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs_dir() == tmp_path / "elsewhere"
    assert RunStore().root == tmp_path / "elsewhere"
    RunStore().cached("s", "k", lambda: 1)
    assert (tmp_path / "elsewhere" / "s" / "k.json").exists()


@pytest.mark.parametrize("value", [None, ""])
def test_runs_dir_default_is_repo_runs(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("WEIRDGEN_RUNS_DIR", raising=False)
    else:
        monkeypatch.setenv("WEIRDGEN_RUNS_DIR", value)
    assert runs_dir() == store.REPO_ROOT / "runs"
    assert (store.REPO_ROOT / "lib" / "weirdgen" / "store.py").is_file()


def test_explicit_root_beats_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIRDGEN_RUNS_DIR", str(tmp_path / "env"))
    assert RunStore(tmp_path / "explicit").root == tmp_path / "explicit"


def test_a_file_is_hashed_once_per_process_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "adapter.bin"
    path.write_bytes(b"a" * 100)
    first = store.file_sha256(path)
    path.write_bytes(b"b" * 100)  # same size, within the same timestamp tick: never taken for the old file
    assert store.file_sha256(path) == hashlib.sha256(b"b" * 100).hexdigest() != first
    monkeypatch.setattr(store, "_RACY_NS", -10**12)  # as if the file had been written long ago
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a[0]) or real_open(*a, **k))
    store.file_sha256(path)
    store.file_sha256(path)
    assert reads == [path]
    os.utime(path, ns=(10**18, 10**18))  # any change of what stat says: hashed again
    assert store.file_sha256(path) == hashlib.sha256(b"b" * 100).hexdigest() and len(reads) == 2
