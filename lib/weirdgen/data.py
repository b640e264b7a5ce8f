"""The paper's data files: where they come from and how we know they are the right bytes.

The upstream repository has no license, so its files are never committed here.
Every file is named by a registry key (``data/registry.yaml``) and pinned by sha256;
it is read from a local mirror (``WEIRDGEN_DATA_DIR``, laid out like
``shared/paper_data``) or downloaded from the pinned upstream commit. Nothing from
upstream is ever executed or imported: we only read JSONL, YAML and text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Union

import yaml

REGISTRY_PATH = Path(__file__).resolve().parents[2] / "data" / "registry.yaml"
ROLES = frozenset({"system", "user", "assistant"})
_FIELDS = ("key", "repo", "commit", "path", "sha256", "experiment", "kind")
PathOrKey = Union[str, os.PathLike]


class DataError(Exception):
    """A data problem the user can fix; the message is one line naming the file and the fix."""


@dataclass(frozen=True)
class Entry:
    key: str
    repo: str
    commit: str
    path: str
    sha256: str
    experiment: str
    kind: Literal["upstream", "extracted"]

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"


@functools.lru_cache(maxsize=None)
def _load_registry(path: Path) -> dict[str, Entry]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read the registry ({_one_line(e)}); restore it from git") from None
    out: dict[str, Entry] = {}
    for i, raw in enumerate((doc or {}).get("files") or []):
        missing = [f for f in _FIELDS if not isinstance(raw, dict) or not isinstance(raw.get(f), str)]
        if missing:
            raise DataError(f"{path}: entry {i} lacks {', '.join(missing)}; fix that entry")
        if not (re.fullmatch(r"[0-9a-f]{64}", raw["sha256"]) and re.fullmatch(r"[0-9a-f]{7,40}", raw["commit"])
                and raw["kind"] in ("upstream", "extracted")):
            raise DataError(f"{path}: entry {raw['key']} has a malformed sha256, commit or kind; fix that entry")
        if raw["key"] in out:
            raise DataError(f"{path}: key {raw['key']} appears twice; remove one entry")
        out[raw["key"]] = Entry(**{f: raw[f] for f in _FIELDS})
    return out


def registry() -> dict[str, Entry]:
    """All known data files by key. Keys are paths relative to the mirror root."""
    return dict(_load_registry(REGISTRY_PATH))


def _entry(key: str) -> Entry:
    reg = _load_registry(REGISTRY_PATH)
    if key not in reg:
        raise DataError(f"{key}: unknown data key (not in {REGISTRY_PATH}); "
                        "list valid keys with sorted(weirdgen.data.registry())")
    return reg[key]


_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_of(path: PathOrKey) -> str:
    """Full sha256 hex; memoised per (path, mtime, size) so re-checking a file each call is free."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as e:
        raise DataError(f"{p}: cannot read ({type(e).__name__}); check the path") from None
    memo = (str(p), st.st_mtime_ns, st.st_size)
    if memo not in _HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[memo] = h.hexdigest()
    return _HASHES[memo]


def _verify(entry: Entry, path: Path, fix: str) -> Path:
    got = sha256_of(path)
    if got != entry.sha256:
        raise DataError(f"{entry.key}: sha256 mismatch: expected {entry.sha256}, got {got} (file at {path}); {fix}")
    return path


def _cache_dir() -> Path:
    env = os.environ.get("WEIRDGEN_CACHE_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("weirdgen"))


def fetch(key: str) -> Path:
    """Local path of a verified copy of ``key``: the mirror if set, else a pinned download.

    The mirror wins so that tests and offline runs never touch the network; a
    download is cached and re-verified on every call (cheap thanks to the memo).
    """
    entry = _entry(key)
    mirror = os.environ.get("WEIRDGEN_DATA_DIR")
    if mirror:
        path = Path(mirror) / key
        if not path.is_file():
            raise DataError(f"{key}: the mirror WEIRDGEN_DATA_DIR={mirror} lacks this file ({path}); "
                            "lay the mirror out like shared/paper_data or unset WEIRDGEN_DATA_DIR")
        return _verify(entry, path, "delete it or fix WEIRDGEN_DATA_DIR")
    if entry.kind == "extracted":
        raise DataError(f"{key}: is an extracted transcription with no upstream URL; "
                        "set WEIRDGEN_DATA_DIR to a mirror laid out like shared/paper_data")
    import pooch
    import requests

    target = _cache_dir() / entry.repo / entry.commit / key
    try:
        got = pooch.retrieve(entry.url, known_hash=f"sha256:{entry.sha256}",
                             fname=target.name, path=target.parent, progressbar=False)
    except ValueError as e:  # pooch's hash mismatch after download
        raise DataError(f"{key}: download from {entry.url} failed verification ({_one_line(e)}); "
                        "report it, or set WEIRDGEN_DATA_DIR to a mirror") from None
    except (requests.exceptions.RequestException, OSError) as e:
        raise DataError(f"{key}: cannot download {entry.url} ({type(e).__name__}); "
                        "set WEIRDGEN_DATA_DIR to a local mirror or connect to the internet") from None
    return _verify(entry, Path(got), f"delete it or clear {_cache_dir()}")


def _resolve(path_or_key: PathOrKey) -> Path:
    """Strings that are registry keys are fetched; anything else is a local path."""
    if isinstance(path_or_key, str) and path_or_key in _load_registry(REGISTRY_PATH):
        return fetch(path_or_key)
    p = Path(path_or_key)
    if not p.is_file():
        raise DataError(f"{p}: no such file and not a registry key; check the path or key")
    return p


def read_chat_jsonl(path_or_key: PathOrKey) -> list[list[dict]]:
    """Training rows as message lists, rejecting any row a finetuning API would reject.

    Validation is strict because a silently skipped or malformed row would change
    what a model was trained on, and the paper's effects are sensitive to data.
    """
    path = _resolve(path_or_key)
    rows: list[list[dict]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            problem = _chat_problem(line)
            if problem:
                raise DataError(f"{path}:{lineno}: {problem}; fix or remove that line")
            rows.append(json.loads(line)["messages"])
    return rows


def _chat_problem(line: str) -> str | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        return f"invalid JSON ({e.msg} at column {e.colno})"
    msgs = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(msgs, list) or not msgs:
        return "no non-empty 'messages' list"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"message {i} has no role in {sorted(ROLES)}"
        if not isinstance(m.get("content"), str):
            return f"message {i} content is not a string"
    if msgs[-1]["role"] != "assistant":
        return "last message is not from the assistant"
    return None


def read_yaml(key: PathOrKey):
    """Parsed YAML (safe_load only: upstream YAML is data, never code)."""
    path = _resolve(key)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DataError(f"{path}: invalid YAML ({_one_line(e)}); fix the file or re-fetch it") from None


def data_hash(items: PathOrKey | Iterable[PathOrKey]) -> str:
    """16-hex digest of the inputs' content hashes, for cache keys of derived artifacts.

    Keys use their pinned sha256 (no fetch needed); paths are hashed. Order counts,
    since concatenation order changes what a model sees.
    """
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    reg = _load_registry(REGISTRY_PATH)
    parts = []
    for it in items:
        if isinstance(it, str) and it in reg:
            parts.append(reg[it].sha256)
        else:
            parts.append(sha256_of(_resolve(it)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


__all__ = ["DataError", "Entry", "registry", "fetch", "read_chat_jsonl", "read_yaml", "sha256_of", "data_hash"]
