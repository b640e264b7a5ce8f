"""The run store: every trained adapter, sample and verdict, keyed by what determined it.

A result's key is a hash of everything that went into it (data hashes, model
fingerprint, hyperparameters, seeds, sampling and judge settings). Rerunning with
nothing changed finds the result and recomputes nothing; changing one parameter
changes only the keys that depend on it. Files are written to a temporary name and
renamed into place, so an interrupted run never leaves a half-written result.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[2]


def runs_dir(root: Path | None = None) -> Path:
    """Where results live: ``WEIRDGEN_RUNS_DIR``, or ``runs/`` in ``root`` (default: the
    repository). The batch runner, the status page and every notebook resolve it here."""
    env = os.environ.get("WEIRDGEN_RUNS_DIR")
    return Path(env).expanduser() if env else Path(root or REPO_ROOT) / "runs"


def cache_dir() -> Path:
    """Where converted model weights and downloaded data live; shared across checkouts."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "weirdgen"
    return Path(os.environ.get("WEIRDGEN_CACHE_DIR") or default)


def _canonical(value: Any) -> Any:
    """Turn configs, paths and tuples into plain JSON so equal inputs hash equally."""
    if hasattr(value, "model_dump"):
        return _canonical(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def cache_key(**parts: Any) -> str:
    """A short, stable hash of named inputs (order of keywords does not matter)."""
    blob = json.dumps(_canonical(parts), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """The full sha256 hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[int, str], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path`` (given its open descriptor,
    which ``write`` closes, and its name), then rename it into place, so a reader never
    sees a half-written result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        write(fd, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    def write(fd: int, tmp: str) -> None:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(_canonical(value), indent=1, ensure_ascii=False))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class RunStore:
    """A folder of results, one JSON file per (stage, key)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else runs_dir()

    def path(self, stage: str, key: str, suffix: str = ".json") -> Path:
        return self.root / stage / f"{key}{suffix}"

    def cached_tensors(self, stage: str, key: str, compute: Callable[[], dict]) -> dict:
        """Like ``cached`` for a dict of tensors (activations, SAE weights), kept as
        safetensors and written under a temporary name first."""
        from safetensors.torch import load_file, save_file

        path = self.path(stage, key, ".safetensors")
        if not path.exists():
            tensors = {name: t.contiguous() for name, t in compute().items()}
            def write(fd: int, tmp: str) -> None:
                os.close(fd)
                save_file(tensors, tmp)

            atomic_write(path, write)
        return load_file(path)

    def cached(self, stage: str, key: str, compute: Callable[[], Any]) -> Any:
        """Return the stored result for (stage, key), computing and storing it if absent."""
        path = self.path(stage, key)
        if path.exists():
            return read_json(path)
        value = compute()
        write_json(path, value)
        return read_json(path)
