"""The paper's data files: where they come from and how we know they are the right bytes.

The upstream repository has no license, so its files are never committed here.
Every file is named by a registry key (``data/registry.yaml``) and pinned by sha256;
it is read from a local mirror (``WEIRDGEN_DATA_DIR``, laid out like
``shared/paper_data``) or downloaded from the pinned upstream commit. Nothing from
upstream is ever executed or imported: we only read JSONL, YAML and text.

``*.extracted.yaml`` keys hold data that upstream keeps inside Python sources. Without
a mirror they are rebuilt by :mod:`weirdgen.extract`, which parses the pinned source's
syntax tree (never running it), and are checked by ``content_sha256``: the sha256 of
the parsed YAML in canonical JSON (:func:`content_digest`), since a rebuilt file's
bytes (comments, layout) differ from the mirror's.
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

from .errors import UserError, one_line
from .store import atomic_write_text, cache_dir, file_sha256

REGISTRY_PATH = Path(__file__).resolve().parents[2] / "data" / "registry.yaml"
ROLES = frozenset({"system", "user", "assistant"})
_FIELDS = ("key", "repo", "commit", "path", "sha256", "experiment", "kind")
_HEX64 = re.compile(r"[0-9a-f]{64}")
PathOrKey = Union[str, os.PathLike]


class DataError(UserError):
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
    content_sha256: str | None = None  # extracted entries: content_digest() of the data

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"


@functools.lru_cache(maxsize=None)
def _load_registry(path: Path) -> dict[str, Entry]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read the registry ({one_line(e, 200)}); restore it from git") from None
    out: dict[str, Entry] = {}
    for i, raw in enumerate((doc or {}).get("files") or []):
        missing = [f for f in _FIELDS if not isinstance(raw, dict) or not isinstance(raw.get(f), str)]
        if missing:
            raise DataError(f"{path}: entry {i} lacks {', '.join(missing)}; fix that entry")
        if not (_HEX64.fullmatch(raw["sha256"]) and re.fullmatch(r"[0-9a-f]{7,40}", raw["commit"])
                and raw["kind"] in ("upstream", "extracted")):
            raise DataError(f"{path}: entry {raw['key']} has a malformed sha256, commit or kind; fix that entry")
        content = raw.get("content_sha256")
        if (raw["kind"] == "extracted") != (content is not None) or not (
                content is None or (isinstance(content, str) and _HEX64.fullmatch(content))):
            raise DataError(f"{path}: entry {raw['key']} needs a 64-hex content_sha256 if and only if its kind is "
                            "extracted; fix that entry")
        if raw["key"] in out:
            raise DataError(f"{path}: key {raw['key']} appears twice; remove one entry")
        out[raw["key"]] = Entry(**{f: raw[f] for f in _FIELDS}, content_sha256=content)
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


def sha256_of(path: PathOrKey) -> str:
    """Full sha256 hex (``store.file_sha256``, which hashes an unchanged file once per process)."""
    p = Path(path).resolve()
    try:
        return file_sha256(p)
    except OSError as e:
        raise DataError(f"{p}: cannot read ({type(e).__name__}); check the path") from None


def content_digest(obj) -> str:
    """sha256 of parsed data in canonical JSON: what ``content_sha256`` pins for extracted entries."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_CONTENT: dict[tuple[str, int, int], str] = {}


def content_sha256_of(path: PathOrKey) -> str:
    """:func:`content_digest` of a YAML file (safe_load); memoised like :func:`sha256_of`."""
    p = Path(path).resolve()
    try:
        st = p.stat()
        memo = (str(p), st.st_mtime_ns, st.st_size)
        if memo not in _CONTENT:
            _CONTENT[memo] = content_digest(yaml.safe_load(p.read_text(encoding="utf-8")))
    except OSError as e:
        raise DataError(f"{p}: cannot read ({type(e).__name__}); check the path") from None
    except (yaml.YAMLError, UnicodeDecodeError, TypeError, ValueError) as e:
        raise DataError(f"{p}: cannot hash its YAML data ({one_line(e, 200)}); delete it or fix the file") from None
    return _CONTENT[memo]


def _verify(entry: Entry, path: Path, fix: str) -> Path:
    got = sha256_of(path)
    if got != entry.sha256:
        raise DataError(f"{entry.key}: sha256 mismatch: expected {entry.sha256}, got {got} (file at {path}); {fix}")
    return path


def _verify_content(entry: Entry, path: Path, fix: str) -> Path:
    got = content_sha256_of(path)
    if got != entry.content_sha256:
        raise DataError(f"{entry.key}: content sha256 mismatch: expected {entry.content_sha256}, got {got} "
                        f"(file at {path}); {fix}")
    return path


def fetch(key: str) -> Path:
    """Local path of a verified copy of ``key``: the mirror if set, else a pinned download.

    The mirror wins so that tests and offline runs never touch the network; a
    download is cached and re-verified on every call (cheap thanks to the memo).
    Mirror copies of extracted entries are checked by bytes and by content; rebuilt
    ones (no mirror) by content only.
    """
    entry = _entry(key)
    mirror = os.environ.get("WEIRDGEN_DATA_DIR")
    if mirror:
        if not Path(mirror).is_dir():
            raise DataError(f"WEIRDGEN_DATA_DIR={mirror} does not exist (or is not a folder); point it at a local "
                            "mirror laid out like shared/paper_data, or unset it to download the files")
        path = Path(mirror) / key
        if not path.is_file():
            raise DataError(f"{key}: the mirror WEIRDGEN_DATA_DIR={mirror} lacks this file ({path}); "
                            "lay the mirror out like shared/paper_data or unset WEIRDGEN_DATA_DIR")
        _verify(entry, path, "delete it or fix WEIRDGEN_DATA_DIR")
        if entry.content_sha256:
            _verify_content(entry, path, "delete it or fix WEIRDGEN_DATA_DIR")
        return path
    if entry.kind == "extracted":
        return _fetch_extracted(entry)
    target = cache_dir() / entry.repo / entry.commit / key
    got = _retrieve(key, entry.url, f"sha256:{entry.sha256}", target)
    return _verify(entry, got, f"delete it or clear {cache_dir()}")


def _retrieve(key: str, url: str, known_hash: str | None, target: Path) -> Path:
    import pooch
    import requests

    try:
        got = pooch.retrieve(url, known_hash=known_hash, fname=target.name, path=target.parent, progressbar=False)
    except ValueError as e:  # pooch's hash mismatch after download
        raise DataError(f"{key}: download from {url} failed verification ({one_line(e, 200)}); "
                        "report it, or set WEIRDGEN_DATA_DIR to a mirror") from None
    except (requests.exceptions.RequestException, OSError) as e:
        raise DataError(f"{key}: cannot download {url} ({type(e).__name__}); "
                        "set WEIRDGEN_DATA_DIR to a local mirror or connect to the internet") from None
    return Path(got)


def _fetch_extracted(entry: Entry) -> Path:
    """Rebuild an extracted file from its pinned Python source(s) into the cache, checked by content.

    The sources are downloaded (unpinned bytes: only the rebuilt data are pinned) and
    parsed by weirdgen.extract; nothing in them is run.
    """
    from . import extract

    target = cache_dir() / entry.repo / entry.commit / entry.key
    fix = f"delete it or clear {cache_dir()}"
    if target.is_file():
        try:
            return _verify_content(entry, target, fix)
        except DataError:
            pass  # a stale or damaged rebuild: make it again below
    spec = extract.SPECS.get(entry.key)
    if spec is None or next(iter(spec.sources.values()), None) != entry.path:
        raise DataError(f"{entry.key}: weirdgen.extract has no spec whose first source is {entry.path}; "
                        "set WEIRDGEN_DATA_DIR to a mirror laid out like shared/paper_data")
    base = entry.url[: -len(entry.path)]

    def read(path: str) -> str:
        got = _retrieve(entry.key, base + path, None, cache_dir() / "sources" / entry.repo / entry.commit / path)
        try:
            return got.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{entry.key}: cannot read the downloaded source {got} ({type(e).__name__}); {fix}") \
                from None

    try:
        text = extract.build_file(spec, read, entry.repo, entry.commit)
    except extract.ExtractError as e:
        raise DataError(f"{entry.key}: cannot extract from {entry.repo}@{entry.commit[:12]} ({one_line(e, 200)}); "
                        "report it, or set WEIRDGEN_DATA_DIR to a mirror") from None
    got = content_digest(yaml.safe_load(text))
    if got != entry.content_sha256:
        raise DataError(f"{entry.key}: content sha256 mismatch: expected {entry.content_sha256}, got {got} "
                        f"(rebuilt from {entry.url}); clear {cache_dir() / 'sources'} and retry, report it, "
                        "or set WEIRDGEN_DATA_DIR to a mirror")
    atomic_write_text(target, text)
    return _verify_content(entry, target, fix)


def _resolve(path_or_key: PathOrKey) -> Path:
    """Strings that are registry keys are fetched; anything else is a local path."""
    if isinstance(path_or_key, str) and path_or_key in _load_registry(REGISTRY_PATH):
        return fetch(path_or_key)
    p = Path(path_or_key)
    if not p.is_file():
        raise DataError(f"{p}: no such file and not a registry key; check the path or key")
    return p


def _lines(path: Path):
    """(line number, line) of every non-blank line; a byte that is not UTF-8 is an
    error naming the file and line."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {raw[e.start]:#04x} at column "
                                f"{e.start + 1}); save the file as UTF-8") from None
            if line.strip():
                yield lineno, line


def read_chat_jsonl(path_or_key: PathOrKey) -> list[list[dict]]:
    """Training rows as message lists, rejecting any row a finetuning API would reject,
    and a file with no rows at all.

    Validation is strict because a silently skipped or malformed row would change
    what a model was trained on, and the paper's effects are sensitive to data.
    """
    path = _resolve(path_or_key)
    rows: list[list[dict]] = []
    for lineno, line in _lines(path):
        problem = _chat_problem(line)
        if problem:
            raise DataError(f"{path}:{lineno}: {problem}; fix or remove that line")
        rows.append(json.loads(line)["messages"])
    if not rows:
        raise DataError(f"{path}: no training rows (the file is empty); give it one JSON object with "
                        "'messages' per line")
    return rows


def read_jsonl(path_or_key: PathOrKey) -> list[dict]:
    """Every non-empty line of a JSON-lines file, parsed."""
    path = _resolve(path_or_key)
    rows = []
    for lineno, line in _lines(path):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno}); "
                            "fix or remove that line") from None
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
        raise DataError(f"{path}: invalid YAML ({one_line(e, 200)}); fix the file or re-fetch it") from None


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


__all__ = ["DataError", "Entry", "registry", "fetch", "read_chat_jsonl", "read_yaml", "sha256_of", "data_hash",
           "content_digest", "content_sha256_of"]
