"""The build log, ``<run store>/book_log.json``: one owner for its name and schema.

``weirdgen.book.build`` writes it (atomically, read-modify-write) around every
notebook it runs; ``weirdgen.book.status`` only reads it. Its shape::

    {"build_started_at", "build_profile", "build_status", "build_wall_seconds",
     "build_jobs_wall_seconds", "build_notebooks_dir",
     "notebooks": {NN_name: {<last entry>, "history": [pass, ...],
                             "longest": {profile: pass}, "reuse": {...}, "kept_at": ...,
                             "job_seconds": ...}}}

where a pass is ``{started_at, profile, status, wall_seconds, peak_rss_mb}``; ``reuse``
is what ``weirdgen.book.reuse`` compares before running the notebook again, and
``kept_at`` the last time a build kept its executed page instead. A build that ran
its notebooks as jobs first (``weirdgen.book.jobs``) records how long that took
(``build_jobs_wall_seconds``, included in ``build_wall_seconds``) and each notebook's
jobs' wall time (``job_seconds``): its pass then only rendered it from the store.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..store import atomic_write_text

LOG_NAME = "book_log.json"
STATUS_NOTEBOOK = "99_status"  # the status page: runs last, reads this log, is left out of its tables

HISTORY = 5  # passes remembered per notebook in the build log


def read(runs_dir: Path, quarantine: bool = True) -> dict[str, Any]:
    """The log in ``runs_dir`` ({"notebooks": {}} when there is none). An unreadable one
    is moved aside with a warning when ``quarantine`` (the batch runner), else only
    ignored (the status page, which never writes)."""
    path = runs_dir / LOG_NAME
    if not path.exists():
        return {"notebooks": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        if not quarantine:
            return {"notebooks": {}}
        backup = path.with_name(f"{LOG_NAME}.corrupt-{int(time.time())}")
        os.replace(path, backup)
        print(f"warning: {path} was unreadable ({exc}); moved to {backup.name}", file=sys.stderr)
        return {"notebooks": {}}
    if not isinstance(data.get("notebooks"), dict):
        data["notebooks"] = {}
    return data


def write(runs_dir: Path, log: dict[str, Any]) -> None:
    atomic_write_text(runs_dir / LOG_NAME, json.dumps(log, indent=2, sort_keys=False) + "\n")


_UNWRITABLE: set[Path] = set()  # stores already reported read-only, so the note is printed once


def update(runs_dir: Path, build: dict[str, Any] | None = None, entry: dict[str, Any] | None = None) -> None:
    """Read-modify-write the log so concurrent edits by other notebooks' entries survive."""
    log = read(runs_dir)
    if build:
        log.update(build)
    if entry:
        # Keep the last few passes, and the longest finished pass per profile, so that
        # cached rebuilds do not hide what a cold one cost.
        previous = log["notebooks"].get(entry["name"], {})
        past = previous.get("history", [])
        run = {k: entry.get(k) for k in ("started_at", "profile", "status", "wall_seconds", "peak_rss_mb")}
        if past and past[-1].get("started_at") == run["started_at"]:
            past = past[:-1]  # the same pass, now finished: it replaces its "running" entry
        history = (past + [run])[-HISTORY:]
        log["notebooks"][entry["name"]] = {**entry, "history": history,
                                           "longest": _longest(previous.get("longest", {}), past + [run])}
    try:
        write(runs_dir, log)
    except OSError as e:
        if runs_dir not in _UNWRITABLE:
            _UNWRITABLE.add(runs_dir)
            print(f"note: {runs_dir} is not writable ({e.strerror or type(e).__name__}): the build log is not "
                  "kept this time, and the status page shows no timings", file=sys.stderr)


def annotate(runs_dir: Path, name: str, **fields: Any) -> None:
    """Add ``fields`` to a notebook's last entry without counting a pass (what a pass
    that kept the notebook's page, or finished, records beside it)."""
    log = read(runs_dir)
    if name in log["notebooks"]:
        log["notebooks"][name].update(fields)
        try:
            write(runs_dir, log)
        except OSError:
            pass  # a read-only store: update() has said so once


def close_stale(runs_dir: Path) -> list[str]:
    """Entries a killed build left "running": mark them "interrupted" (in the entry and
    its last history pass), so no page shows a pass as still running. Returns their names."""
    log = read(runs_dir)
    stale = [name for name, e in log["notebooks"].items() if e.get("status") == "running"]
    for name in stale:
        entry = log["notebooks"][name]
        entry["status"] = "interrupted"
        entry.setdefault("error", "the build was killed while this notebook ran")
        if entry.get("history") and entry["history"][-1].get("status") == "running":
            entry["history"][-1]["status"] = "interrupted"
    if stale:
        try:
            write(runs_dir, log)
        except OSError:
            pass  # a read-only store keeps its log as it is
    return stale


def _longest(known: dict[str, dict], runs: list[dict]) -> dict[str, dict]:
    """Per profile, the finished pass with the largest wall time among ``known`` and ``runs``."""
    longest = dict(known)
    for run in runs:
        if run.get("status") != "ok" or run.get("wall_seconds") is None:
            continue
        best = longest.get(run["profile"])
        if best is None or run["wall_seconds"] > best["wall_seconds"]:
            longest[run["profile"]] = run
    return longest
