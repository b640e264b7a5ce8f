"""When an executed chapter can be reused instead of run again.

A chapter's executed notebook is a function of its source, its parameters, the
library and data files, the packages that run it, a few environment switches (an API
key's presence, the API's base URL) and what the run store held when it ran. A build
that finds all of these unchanged since the pass that produced the chapter, and the
executed notebook itself untouched, keeps it: a second ``make book`` with nothing
changed executes only the status page. Anything else runs the notebook, and
``--execute-all`` runs every one regardless.

The store's part is compared as a whole: a pass records, for each notebook it ran or
kept, the digest of the store as the pass *ended*. The next pass keeps a notebook only
while the store still has that digest, so once any notebook computes something new,
every later one runs again (conservative: a notebook never reads a result the run that
produced its page did not have).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..store import file_sha256
from .booklog import LOG_NAME  # the log of passes is not a result (nor are the store's lock files)

# The packages whose versions can change a chapter's numbers or its rendering.
PACKAGES = ("torch", "transformers", "peft", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "papermill",
            "nbformat", "myst-nb", "pydantic", "safetensors", "tokenizers")
# Environment switches a chapter reads (the key's value never enters a digest: only whether it is set).
SWITCHES = ("OPENAI_BASE_URL",)
PRESENCE = ("OPENAI_API_KEY",)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


def code_digest(root: Path) -> str:
    """The library, the project's data files and the packages and interpreter running them."""
    h = hashlib.sha256()
    library = Path(__file__).resolve().parents[1]
    for folder in (library, root / "data"):
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                h.update(f"{path.relative_to(folder)}\0{file_sha256(path)}\0".encode())
    h.update(json.dumps({"python": sys.version, **{p: _version(p) for p in PACKAGES}}, sort_keys=True).encode())
    h.update(json.dumps({k: os.environ.get(k) for k in SWITCHES}, sort_keys=True).encode())
    h.update(json.dumps({k: bool(os.environ.get(k)) for k in PRESENCE}, sort_keys=True).encode())
    return h.hexdigest()


def notebook_key(source: Path, parameters: dict[str, Any], kernel: str, code: str) -> str:
    """What one chapter's page depends on, apart from the store."""
    h = hashlib.sha256(source.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(f"\0{kernel}\0{code}".encode())
    return h.hexdigest()


def store_digest(runs_dir: Path) -> str:
    """Every result in the store: the bytes of each JSON record (which carry the sha256 of
    their values and of the tensor and adapter files beside them), and the name and size
    of every other file."""
    h = hashlib.sha256()
    if not runs_dir.is_dir():
        return h.hexdigest()
    for path in sorted(runs_dir.rglob("*")):
        relative = path.relative_to(runs_dir)
        if not path.is_file() or relative.parts[0] == "locks" or relative.name.startswith(LOG_NAME):
            continue
        if path.suffix == ".json":
            h.update(f"{relative}\0".encode() + path.read_bytes() + b"\0")
        else:
            h.update(f"{relative}\0{path.stat().st_size}\0".encode())
    return h.hexdigest()


def record(key: str, store: str, output: Path) -> dict[str, str]:
    """What the log keeps beside a pass's entry, to decide reuse next time."""
    return {"key": key, "store": store, "output_sha256": file_sha256(output)}


def reusable(entry: dict[str, Any] | None, profile: str, key: str, store: str, output: Path) -> bool:
    """Whether the log's entry for a notebook says its executed page at ``output`` can stand."""
    kept = (entry or {}).get("reuse")
    return bool(entry and kept and entry.get("status") == "ok" and entry.get("profile") == profile
                and kept.get("key") == key and kept.get("store") == store and output.is_file()
                and kept.get("output_sha256") == file_sha256(output))
