"""What the book's status page (notebooks/99_status.py) shows: which code, which
packages, which machine, and how each notebook of the last build went.

Everything here reads; nothing writes. The run store is ``$WEIRDGEN_RUNS_DIR`` or
``runs/`` in the repository (as in ``weirdgen.store``; ``weirdgen.book.build`` exports
``WEIRDGEN_RUNS_DIR`` to the kernels it starts); the build log is
``<run store>/book_log.json``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .. import store
from . import booklog
from .booklog import STATUS_NOTEBOOK

# distribution names, as pip knows them
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "papermill",
    "jupytext",
    "jupyter-book",
    "myst-nb",
    "numpy",
    "pandas",
    "matplotlib",
    "seaborn",
    "weirdgen",
)


def repo_root(root: str | Path | None = None) -> Path:
    """``root``, or the checkout this package lives in (editable install)."""
    return Path(root).resolve() if root is not None else store.REPO_ROOT


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- code


def _git(root: Path, *args: str) -> str | None:
    try:
        # --no-optional-locks: `git status` would otherwise refresh the index, i.e. write
        # to the repository, while someone else may be committing
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(root: str | Path | None = None) -> dict[str, Any]:
    """Commit of the working tree and whether it differed from that commit.

    ``root`` defaults to the working directory: the build runs notebooks from the
    repository root, and git finds the repository from a subfolder (JupyterLab) too.
    ``dirty`` counts modified tracked files and untracked, non-ignored files (a new,
    uncommitted notebook changes what the book shows); ``None`` where git is not
    available or the folder is not a repository."""
    root = Path(root).resolve() if root is not None else Path.cwd()
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "short": None, "dirty": None, "changed_files": None}
    porcelain = _git(root, "status", "--porcelain")
    changed = [line for line in (porcelain or "").splitlines() if line.strip()]
    return {
        "commit": commit,
        "short": commit[:12],
        "dirty": bool(changed) if porcelain is not None else None,
        "changed_files": len(changed) if porcelain is not None else None,
    }


# --------------------------------------------------------------------------- packages


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        if name == "weirdgen":  # run from a source tree without installing it
            try:
                import weirdgen

                return f"{weirdgen.__version__} (not installed)"
            except Exception:  # noqa: BLE001
                return None
        return None


def package_versions(packages: Iterable[str] = PACKAGES) -> pd.DataFrame:
    rows = [{"package": p, "version": package_version(p) or "not installed"} for p in packages]
    return pd.DataFrame(rows).set_index("package")


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _ram_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _gpus() -> list[str]:
    try:
        import torch
    except Exception:  # noqa: BLE001
        return []
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append(f"{props.name} ({props.total_memory / 2**30:.0f} GiB)")
    return gpus


def hardware() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    gpus = _gpus()
    return {
        "cpu": _cpu_model(),
        "logical cores": os.cpu_count(),
        "cores usable here": usable,
        "RAM (GiB)": _ram_gib(),
        "GPU": "; ".join(gpus) if gpus else "none",
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


# --------------------------------------------------------------------------- build log


def read_book_log(runs: str | Path | None = None) -> dict[str, Any]:
    """The build log written by ``weirdgen.book.build`` (no notebooks when there is none)."""
    return booklog.read(Path(runs) if runs is not None else store.runs_dir(), quarantine=False)


def _hms(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return ""
    seconds = int(round(float(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def book_log_frame(
    log: dict[str, Any],
    exclude: Iterable[str] = (STATUS_NOTEBOOK,),
    drop_missing: bool = True,
) -> pd.DataFrame:
    """One row per notebook (sorted by name): profile, status, start, wall time and,
    where the log has it, the kernel's peak memory and when a later build last kept
    the page that pass made (its inputs unchanged). The status page leaves itself
    out by default: it is still running when it reads the log. With ``drop_missing``,
    entries of notebooks whose source no longer exists in the last build's notebooks
    folder are left out."""
    exclude = set(exclude)
    rows = [e for name, e in sorted(log.get("notebooks", {}).items()) if name not in exclude]
    nb_dir = log.get("build_notebooks_dir")
    if drop_missing and nb_dir and Path(nb_dir).is_dir():
        rows = [e for e in rows if (Path(nb_dir) / f"{e.get('name')}.py").exists()]
    columns = ["notebook", "profile", "status", "started_at", "wall_seconds"]
    if any("peak_rss_mb" in e for e in rows):
        columns.append("peak_rss_mb")
    if any("kept_at" in e for e in rows):  # a later build kept the page this pass made
        columns.append("kept_at")
    if any(e.get("job_seconds") is not None for e in rows):  # computed as jobs, then rendered
        columns.append("job_seconds")
    frame = pd.DataFrame(
        [{"notebook": e.get("name"), **{c: e.get(c) for c in columns[1:]}} for e in rows],
        columns=columns,
    )
    frame["wall_seconds"] = pd.to_numeric(frame["wall_seconds"], errors="coerce")
    if "job_seconds" in frame:
        frame["job_seconds"] = pd.to_numeric(frame["job_seconds"], errors="coerce")
    if "peak_rss_mb" in frame:
        frame["peak_rss_mb"] = pd.to_numeric(frame["peak_rss_mb"], errors="coerce")
    frame.insert(frame.columns.get_loc("wall_seconds") + 1, "wall", frame["wall_seconds"].map(_hms))
    return frame


def history_frame(log: dict[str, Any], exclude: Iterable[str] = (STATUS_NOTEBOOK,)) -> pd.DataFrame:
    """Earlier passes of each notebook (newest last): a cached rebuild takes seconds,
    so the cost of the last full computation is read here."""
    rows = [{"notebook": name, **run} for name, e in sorted(log.get("notebooks", {}).items())
            if name not in set(exclude) for run in e.get("history", [])]
    frame = pd.DataFrame(rows, columns=["notebook", "started_at", "profile", "status", "wall_seconds", "peak_rss_mb"])
    frame["wall"] = pd.to_numeric(frame["wall_seconds"], errors="coerce").map(_hms)
    return frame


def longest_frame(log: dict[str, Any], profile: str, exclude: Iterable[str] = (STATUS_NOTEBOOK,)) -> pd.DataFrame:
    """The longest finished pass of each notebook with ``profile`` ever recorded: for a
    notebook whose first pass computed everything, what it costs from scratch."""
    rows = [{"notebook": name, **e["longest"][profile]} for name, e in sorted(log.get("notebooks", {}).items())
            if name not in set(exclude) and profile in e.get("longest", {})]
    frame = pd.DataFrame(rows, columns=["notebook", "started_at", "profile", "status", "wall_seconds", "peak_rss_mb"])
    for column in ("wall_seconds", "peak_rss_mb"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["wall"] = frame["wall_seconds"].map(_hms)
    return frame


def with_total(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus a "total" row: summed wall time, largest peak memory."""
    total: dict[str, Any] = {c: "" for c in frame.columns}
    total["notebook"] = "total"
    wall = float(frame["wall_seconds"].sum()) if len(frame) else 0.0
    total["wall_seconds"] = round(wall, 2)
    total["wall"] = _hms(wall)
    if "peak_rss_mb" in frame:
        total["peak_rss_mb"] = frame["peak_rss_mb"].max() if len(frame) else None
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def profiles_used(frame: pd.DataFrame) -> list[str]:
    return sorted({p for p in frame.get("profile", []) if isinstance(p, str) and p})


def summary(root: str | Path | None = None) -> dict[str, Any]:
    """Everything the status page's header shows, as one flat mapping."""
    git = git_info(root)
    log = read_book_log()
    if git["commit"] is None:
        commit = "unknown (not a git checkout)"
    else:
        commit = git["short"] + (f" + uncommitted changes ({git['changed_files']} files)" if git["dirty"] else "")
    return {
        "page executed at (UTC)": now_utc(),
        "build started at (UTC)": log.get("build_started_at", "unknown"),
        "profile of this build": log.get("build_profile", "unknown"),
        **({"notebooks computed as parallel jobs first (s)": log["build_jobs_wall_seconds"]}
           if log.get("build_jobs_wall_seconds") is not None else {}),
        "git commit": commit,
        "python": sys.version.split()[0],
    }
