"""Batch runner: turn the notebook sources into the executed chapters of the book.

    python -m weirdgen.book.build --profile cpu [--only old_bird_names] \
        [--notebooks-dir notebooks] [--out-dir book/chapters]

For every ``NN_name.py`` in the notebooks folder (sorted, the status page
``99_status.py`` last) this

1. converts the jupytext py:percent source to ``build/notebooks/NN_name.ipynb``;
2. checks the parameters of ``params/<profile>.yaml`` (its ``common:`` section and
   the section named after the notebook without its ``NN_`` prefix) against the
   notebook's ``parameters`` cell; any unknown name stops everything (exit 2)
   before a single notebook runs;
3. executes it with papermill into ``build/partial/NN_name.ipynb`` and, only when
   every cell succeeded, moves it to ``<out-dir>/NN_name.ipynb``: a failing run
   never replaces a finished chapter. The first failure stops the pass (exit 1);
4. records name, profile, start time, wall time, status and the kernel's peak
   memory in ``<runs-dir>/book_log.json`` (written atomically), keeping the
   entries of notebooks this pass did not run.

A notebook whose source, parameters, library, packages and run store are all as they
were when its executed page was made keeps that page instead of running again
(``weirdgen.book.reuse``; ``--execute-all`` runs it regardless); the status page always
runs.

Parameters reach a notebook as ``common ∪ section ∪ {"profile": profile}``. A
``common`` key is given only to the notebooks whose parameters cell declares it
(the status page does not declare the chapters' knobs); a ``common`` key that no
notebook declares is an error, like an unknown key in a notebook's own section.

Environment variables whose names contain KEY, TOKEN or SECRET are never turned
into parameters; their values are masked in everything this runner prints and in
the saved notebooks (outputs included), in case a notebook prints one by mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import UserError, one_line
from ..store import atomic_write, atomic_write_text
from ..store import runs_dir as runs_dir_of
from . import booklog, preflight, reuse
from .booklog import STATUS_NOTEBOOK

KERNEL_NAME = "python3"
NOTEBOOK_RE = re.compile(r"^(\d\d)_([A-Za-z0-9_]+)\.py$")
SECRET_ENV_RE = re.compile(r"KEY|TOKEN|SECRET")
# parameter names that look like credentials: those belong in the environment
CREDENTIAL_PARAM_RE = re.compile(r"(api_?key|secret|password|passwd|access_?token|auth_?token)$", re.I)
REDACTED = "[redacted]"
MIN_SECRET_LEN = 8  # shorter values ("1", "false") would mask ordinary text


class BuildError(UserError):
    """A configuration problem found before anything ran (exit 2)."""


class NotebookFailed(Exception):
    """A notebook raised while executing (exit 1)."""


# --------------------------------------------------------------------------- paths


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- secrets


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of the environment variables that must never be shown."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_ENV_RE.search(k.upper()) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_notebook_file(path: Path, secrets: Sequence[str]) -> None:
    """Mask secret values anywhere in a saved notebook (sources, outputs, metadata)."""
    if not secrets or not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    new = text
    for value in secrets:
        escaped = json.dumps(value)[1:-1]  # the value as it appears inside a JSON string
        new = new.replace(escaped, REDACTED)
    if new != text:
        atomic_write_text(path, new)


class _RedactingFilter(logging.Filter):
    """Masks secrets in papermill's log (which carries the kernels' output) and drops
    papermill's warning about ``profile``, which every notebook receives."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg == "Passed unknown parameter: profile":
            return False
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging() -> None:
    logger = logging.getLogger("papermill")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        # on the handler, so records of papermill's child loggers are masked too
        handler.addFilter(_RedactingFilter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


# --------------------------------------------------------------------------- files


def _move_into_place(src: Path, dst: Path) -> None:
    """Atomically replace ``dst`` by ``src`` (copying first if they lie on different filesystems)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError:
        def copy(fd: int, tmp: str) -> None:
            os.close(fd)
            shutil.copyfile(src, tmp)

        atomic_write(dst, copy)
        os.unlink(src)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- notebooks


@dataclass
class Notebook:
    source: Path  # notebooks/NN_name.py
    known: dict[str, Any] = field(default_factory=dict)  # its parameters cell (papermill.inspect_notebook)
    ipynb: Path | None = None  # the converted input
    parameters: dict[str, Any] = field(default_factory=dict)  # what it will receive
    profile: str = ""  # the profile its parameters come from (a parent's, for an inherited section)

    @property
    def name(self) -> str:  # NN_name
        return self.source.stem

    @property
    def section(self) -> str:  # name without NN_: its section in params/<profile>.yaml
        return NOTEBOOK_RE.match(self.source.name).group(2)  # type: ignore[union-attr]


def discover(notebooks_dir: Path) -> list[Notebook]:
    """``NN_*.py`` in sorted order, the status notebook last."""
    found = sorted(p for p in notebooks_dir.glob("*.py") if NOTEBOOK_RE.match(p.name))
    found.sort(key=lambda p: (p.stem == STATUS_NOTEBOOK, p.name))
    notebooks = [Notebook(p) for p in found]
    seen: dict[str, str] = {}
    for nb in notebooks:
        if nb.section in seen:
            raise BuildError(f"{seen[nb.section]}.py and {nb.name}.py share the params section '{nb.section}'")
        seen[nb.section] = nb.name
    return notebooks


def select(notebooks: list[Notebook], only: Sequence[str] | None) -> list[Notebook]:
    if not only:
        return notebooks
    wanted = [w.strip() for item in only for w in item.split(",") if w.strip()]
    by_key = {}
    for nb in notebooks:
        by_key[nb.name] = nb
        by_key[nb.section] = nb
    unknown = [w for w in wanted if w.removesuffix(".py") not in by_key]
    if unknown:
        raise BuildError(
            f"--only: no notebook named {', '.join(repr(u) for u in unknown)} "
            f"(notebooks: {', '.join(nb.section for nb in notebooks) or 'none'})"
        )
    chosen = {by_key[w.removesuffix(".py")].name for w in wanted}
    return [nb for nb in notebooks if nb.name in chosen]


def convert(nb: Notebook, build_dir: Path) -> Path:
    """py:percent → ``build_dir/NN_name.ipynb`` via jupytext's Python API."""
    import jupytext

    try:
        notebook = jupytext.read(nb.source, fmt="py:percent")
    except Exception as exc:  # noqa: BLE001 - reported as a one-line config error
        raise BuildError(f"{nb.source}: jupytext cannot read it: {type(exc).__name__}: {exc}") from exc
    kernelspec = dict(notebook.metadata.get("kernelspec") or {})
    # papermill needs a language to write the injected parameters cell
    kernelspec.setdefault("name", KERNEL_NAME)
    kernelspec.setdefault("display_name", "Python 3")
    kernelspec.setdefault("language", "python")
    notebook.metadata["kernelspec"] = kernelspec
    out = build_dir / f"{nb.name}.ipynb"
    atomic_write_text(out, jupytext.writes(notebook, fmt="ipynb"))
    # jupytext.toml pairs notebooks/*.py with build/notebooks/*.ipynb; a paired .ipynb
    # newer than its .py makes JupyterLab refuse to open the .py. Give the copy the
    # source's timestamp (what `jupytext --use-source-timestamp` does).
    st = nb.source.stat()
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    return out


def inspect_parameters(ipynb: Path) -> dict[str, Any]:
    import papermill

    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.WARNING)  # inspect_notebook logs "Input Notebook: ..." at INFO
    try:
        return papermill.inspect_notebook(str(ipynb))
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- params


NOT_PROFILES = {"cluster"}  # params/cluster.yaml holds Slurm settings (weirdgen.book.jobs), not parameters


def available_profiles(params_dir: Path) -> list[str]:
    return sorted(p.stem for p in params_dir.glob("*.yaml") if p.stem not in NOT_PROFILES)


EXTENDS = "extends"  # a profile's key naming the profile it inherits every section it does not set from


def _read_profile(params_dir: Path, profile: str, root: Path | None) -> dict[str, Any]:
    import yaml

    path = params_dir / f"{profile}.yaml"
    shown = _rel(path, root) if root is not None else str(path)
    if not path.is_file() or profile in NOT_PROFILES:
        profiles = available_profiles(params_dir)
        raise BuildError(
            f"unknown profile '{profile}': no {shown} (profiles: {', '.join(profiles) or 'none'})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BuildError(f"{shown}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise BuildError(f"{shown}: expected a mapping of sections, got {type(data).__name__}")
    parent = data.pop(EXTENDS, None)
    if parent is not None and not isinstance(parent, str):
        raise BuildError(f"{shown}: '{EXTENDS}' must name a profile (e.g. {EXTENDS}: cpu), got {parent!r}")
    if parent is not None and "common" in data:
        raise BuildError(f"{shown}: a profile that extends '{parent}' cannot set 'common' (it would change the "
                         f"chapters it inherits); set those keys in its own sections")
    for section, values in list(data.items()):
        if values is None:
            data[section] = {}
        elif not isinstance(values, dict):
            raise BuildError(f"{shown}: section '{section}' must be a mapping, got {type(values).__name__}")
    if parent is not None:
        data[EXTENDS] = parent
    return data


def load_profile(params_dir: Path, profile: str, root: Path | None = None) -> dict[str, Any]:
    """The sections of ``params/<profile>.yaml``. A profile with ``extends: <parent>``
    inherits, unchanged, every section it does not set (and the parent's ``common``);
    those chapters keep the parent's profile name (``origins``), so their pages and
    results are the parent's and a build of the child reuses them."""
    return load_chain(params_dir, profile, root)[0]


def load_chain(params_dir: Path, profile: str, root: Path | None = None
               ) -> tuple[dict[str, Any], dict[str, str], str]:
    """(the merged sections, the profile each section comes from, the root profile: the
    one that extends none) of ``profile`` and the profiles it extends; a cycle is an
    error."""
    chain: list[tuple[str, dict[str, Any]]] = []
    name: str | None = profile
    while name is not None:
        if name in (n for n, _ in chain):
            raise BuildError(f"params/{profile}.yaml: '{EXTENDS}' goes round in a circle "
                             f"({' -> '.join([n for n, _ in chain] + [name])})")
        data = _read_profile(params_dir, name, root)
        chain.append((name, data))
        name = data.pop(EXTENDS, None)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, data in reversed(chain):  # the root first, each child over it
        for section, values in data.items():
            merged[section] = values
            origins[section] = name
    return merged, origins, chain[-1][0]


def resolve_parameters(
    profile: str,
    params: dict[str, Any],
    all_notebooks: list[Notebook],
    selected: list[Notebook],
    params_label: str,
    origins: dict[str, str] | None = None,
    root_profile: str | None = None,
) -> None:
    """Fill ``nb.parameters`` for the selected notebooks, or raise BuildError.

    ``all_notebooks`` must have ``known`` filled (their parameters cells): sections and
    ``common`` keys are checked against every notebook in the folder, not only the
    selected ones, so that ``--only`` does not hide a typo. ``origins`` (``load_chain``)
    names the profile each section comes from; a notebook runs under that name, and one
    without a section under ``root_profile`` (the status page under ``profile``, the
    build's own).
    """
    origins = origins or {}
    root_profile = root_profile or profile
    common = params.get("common", {})
    sections = {nb.section: nb for nb in all_notebooks}
    for section in params:
        if section != "common" and section not in sections:
            raise BuildError(
                f"{params_label}: section '{section}' matches no notebook "
                f"(notebooks: {', '.join(sections) or 'none'})"
            )
    for section, values in params.items():
        for key in values:
            if key == "profile":
                raise BuildError(f"{params_label}: '{section}.profile' is reserved (set by --profile)")
            if CREDENTIAL_PARAM_RE.search(str(key)):
                raise BuildError(
                    f"{params_label}: parameter '{key}' looks like a credential; "
                    "secrets come from the environment only"
                )
    for key in common:
        if not any(key in nb.known for nb in all_notebooks):
            known = sorted({k for nb in all_notebooks for k in nb.known})
            raise BuildError(
                f"{params_label}: unknown parameter '{key}' in common: no notebook declares it "
                f"(known: {', '.join(known) or 'none'})"
            )
    for nb in all_notebooks:
        for key in params.get(nb.section, {}):
            if key not in nb.known:
                raise BuildError(
                    f"{params_label}: unknown parameter '{key}' for notebook {nb.name} "
                    f"(known: {', '.join(sorted(nb.known)) or 'none'})"
                )
    for nb in selected:
        merged = {k: v for k, v in common.items() if k in nb.known}
        merged.update(params.get(nb.section, {}))
        nb.profile = profile if nb.name == STATUS_NOTEBOOK else origins.get(nb.section, root_profile)
        merged["profile"] = nb.profile
        nb.parameters = merged


# --------------------------------------------------------------------------- execution


def _peak_tracking_kernel_manager():
    """An AsyncKernelManager that reads the kernel's peak RSS (VmHWM) just before shutdown."""
    from jupyter_client.manager import AsyncKernelManager

    class PeakRSSKernelManager(AsyncKernelManager):
        last_peak_rss_mb: float | None = None
        # The kernel process's own stderr (C-level logs, a traceback it prints when its
        # client goes away on Ctrl-C) goes to this file rather than the runner's output;
        # cell output and errors travel over the kernel's channels as always.
        stderr_log: Path | None = None

        async def _async_launch_kernel(self, kernel_cmd, **kw):  # type: ignore[override]
            if self.stderr_log is not None:
                kw["stderr"] = open(self.stderr_log, "ab")  # the kernel process holds it open
            await super()._async_launch_kernel(kernel_cmd, **kw)

        def _read_peak(self) -> None:
            pid = getattr(self.provisioner, "pid", None) if self.provisioner else None
            if not pid:
                return
            peak = None
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            peak = int(line.split()[1]) / 1024  # kB → MiB
                            break
            except OSError:
                try:  # not Linux: the current RSS, better than nothing
                    import psutil

                    peak = psutil.Process(pid).memory_info().rss / 2**20
                except Exception:  # noqa: BLE001
                    peak = None
            if peak is not None:
                type(self).last_peak_rss_mb = round(peak, 1)

        async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:  # type: ignore[override]
            self._read_peak()
            await super().shutdown_kernel(now=now, restart=restart)

    return PeakRSSKernelManager


@contextlib.contextmanager
def _environ(**updates: str):
    old = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _failed_cell(partial: Path) -> tuple[int | None, str | None]:
    """1-based position, in the source notebook, of the failing cell and its error."""
    import nbformat

    try:
        notebook = nbformat.read(str(partial), as_version=4)
    except Exception:  # noqa: BLE001
        return None, None
    position = 0
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue
        position += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return position, f"{out.get('ename')}: {out.get('evalue')}"
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            return position, None
    return None, None


def execute(
    nb: Notebook,
    *,
    profile: str,
    root: Path,
    out_dir: Path,
    partial_dir: Path,
    runs_dir: Path,
    kernel_name: str = KERNEL_NAME,
) -> dict[str, Any]:
    """Run one converted notebook; returns its log entry. Raises NotebookFailed."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    assert nb.ipynb is not None
    partial = partial_dir / f"{nb.name}.ipynb"
    final = out_dir / f"{nb.name}.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    secrets = secret_values()
    entry: dict[str, Any] = {
        "name": nb.name,
        "profile": profile,
        "started_at": _utc_now(),
        "wall_seconds": None,
        "status": "running",
        "output": _rel(final, root),
    }
    booklog.update(runs_dir, entry=entry)
    km_class = _peak_tracking_kernel_manager()
    km_class.last_peak_rss_mb = None
    km_class.stderr_log = partial_dir / f"{nb.name}.kernel.log"
    t0 = time.perf_counter()
    error: BaseException | None = None
    try:
        with _environ(WEIRDGEN_RUNS_DIR=str(runs_dir), PYDEVD_DISABLE_FILE_VALIDATION="1"):
            papermill.execute_notebook(
                str(nb.ipynb),
                str(partial),
                parameters=nb.parameters,
                kernel_name=kernel_name,
                cwd=str(root),
                progress_bar=False,
                log_output=True,
                kernel_manager_class=km_class,
            )
    except KeyboardInterrupt:
        entry.update(status="interrupted", wall_seconds=round(time.perf_counter() - t0, 2))
        booklog.update(runs_dir, entry=entry)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the run fails the notebook
        error = exc
    entry["wall_seconds"] = round(time.perf_counter() - t0, 2)
    if km_class.last_peak_rss_mb is not None:
        entry["peak_rss_mb"] = km_class.last_peak_rss_mb
    redact_notebook_file(partial, secrets)

    if error is None:
        _move_into_place(partial, final)
        entry["status"] = "ok"
        booklog.update(runs_dir, entry=entry)
        return entry

    cell, message = _failed_cell(partial)
    if isinstance(error, PapermillExecutionError):
        message = f"{error.ename}: {error.evalue}"
    elif message is None:
        message = f"{type(error).__name__}: {error}"
    message = one_line(redact(message, secrets))
    where = _rel(partial, root) if partial.exists() else "none"
    line = f"notebook {nb.name} failed in cell {cell if cell is not None else '?'}: {message} (partial output: {where})"
    entry.update(status="failed", error=message, partial_output=where)
    booklog.update(runs_dir, entry=entry)
    raise NotebookFailed(line) from error


# --------------------------------------------------------------------------- driver


def build(
    profile: str,
    *,
    root: Path | str = ".",
    notebooks_dir: Path | str = "notebooks",
    out_dir: Path | str = "book/chapters",
    params_dir: Path | str = "params",
    runs_dir: Path | str | None = None,
    build_dir: Path | str = "build",
    only: Sequence[str] | None = None,
    kernel_name: str = KERNEL_NAME,
    executor: str = "none",
    parallel: int = 2,
    cluster: Any = None,
    execute_all: bool = False,
) -> list[dict[str, Any]]:
    """Convert, check and execute; relative paths are taken from ``root``. With an
    ``executor`` ("local" or "slurm") every notebook, and every seed of a swept one,
    first runs as its own job (``weirdgen.book.jobs``) into the shared run store; the
    pass that follows renders the chapters from it. A chapter whose inputs are unchanged
    since its page was made keeps that page (``weirdgen.book.reuse``) unless
    ``execute_all``; the status page always runs.

    Raises BuildError (nothing ran) or NotebookFailed (the pass stopped there)."""
    root = Path(root).resolve()
    notebooks_dir = root / notebooks_dir
    out_dir = root / out_dir
    params_dir = root / params_dir
    runs_dir = (root / runs_dir) if runs_dir is not None else runs_dir_of(root)
    runs_dir = runs_dir.resolve()
    build_dir = root / build_dir

    params, origins, root_profile = load_chain(params_dir, profile, root)
    params_label = _rel(params_dir / f"{profile}.yaml", root)
    notebooks = discover(notebooks_dir)
    if not notebooks:
        raise BuildError(f"no NN_name.py notebooks in {notebooks_dir}")
    selected = select(notebooks, only)

    for nb in notebooks:  # all of them: the checks look at every notebook
        nb.ipynb = convert(nb, build_dir / "notebooks")
        nb.known = inspect_parameters(nb.ipynb)
    resolve_parameters(profile, params, notebooks, selected, params_label, origins, root_profile)
    for nb in selected:
        try:
            preflight.check(nb.name, nb.section, nb.known, nb.parameters, params_label)
        except UserError as exc:
            raise BuildError(f"{nb.name}: {exc}") from None

    build_started = _utc_now()
    t0 = time.perf_counter()
    code = reuse.code_digest(root)
    job_seconds: dict[str, float] = {}
    if executor != "none":
        # Jobs for the notebooks the pass below would run: one whose page it keeps needs none.
        digest = reuse.store_digest(runs_dir)
        to_compute = [nb for nb in selected if execute_all or _kept_entry(
            nb, reuse.notebook_key(nb.source, nb.parameters, kernel_name, code), runs_dir, digest, out_dir) is None]
        job_seconds = _run_as_jobs(to_compute, executor, root, runs_dir, build_dir, kernel_name, parallel, cluster)
    jobs_wall = round(time.perf_counter() - t0, 2) if executor != "none" else None
    out_dir.mkdir(parents=True, exist_ok=True)
    booklog.close_stale(runs_dir)
    build_info = {"build_started_at": build_started, "build_profile": profile, "build_status": "running",
                  "build_wall_seconds": None, "build_jobs_wall_seconds": jobs_wall,
                  "build_notebooks_dir": str(notebooks_dir)}
    booklog.update(runs_dir, build=build_info)
    entries = []
    status = "failed"
    keys: dict[str, str] = {}
    store_now: str | None = None
    try:
        for nb in selected:
            final = out_dir / f"{nb.name}.ipynb"
            # the key again: the jobs above give a swept notebook the seeds that finished
            keys[nb.name] = reuse.notebook_key(nb.source, nb.parameters, kernel_name, code)
            if not execute_all and nb.name != STATUS_NOTEBOOK:
                store_now = store_now or reuse.store_digest(runs_dir)
                previous = _kept_entry(nb, keys[nb.name], runs_dir, store_now, out_dir)
                if previous is not None:
                    booklog.annotate(runs_dir, nb.name, kept_at=_utc_now())
                    print(f"[weirdgen.book.build] {nb.name} kept: its source, parameters, library and run store "
                          f"are unchanged since it ran (--execute-all runs it again) -> {_rel(final, root)}",
                          flush=True)
                    entries.append({**previous, "kept": True})
                    continue
            print(f"[weirdgen.book.build] {nb.name} (profile {nb.profile}) ...", flush=True)
            store_now = None  # it may compute and store results
            entry = execute(
                nb,
                profile=nb.profile,
                root=root,
                out_dir=out_dir,
                partial_dir=build_dir / "partial",
                runs_dir=runs_dir,
                kernel_name=kernel_name,
            )
            extra = f", peak {entry['peak_rss_mb']:.0f} MiB" if "peak_rss_mb" in entry else ""
            print(f"[weirdgen.book.build] {nb.name} ok in {entry['wall_seconds']:.1f} s{extra} -> "
                  f"{entry['output']}", flush=True)
            entries.append(entry)
        status = "ok"
        store_at_end = reuse.store_digest(runs_dir)
        for nb in selected:
            if nb.name != STATUS_NOTEBOOK:
                booklog.annotate(runs_dir, nb.name,
                                 reuse=reuse.record(keys[nb.name], store_at_end, out_dir / f"{nb.name}.ipynb"),
                                 # what its jobs computed before this pass rendered it from the store
                                 job_seconds=job_seconds.get(nb.name))
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        build_info.update(build_status=status, build_wall_seconds=round(time.perf_counter() - t0, 2))
        booklog.update(runs_dir, build=build_info)
    print(f"[weirdgen.book.build] {len(entries)} notebook(s), profile {profile}, "
          f"{build_info['build_wall_seconds']:.1f} s", flush=True)
    return entries


def _kept_entry(nb: Notebook, key: str, runs_dir: Path, store_digest: str, out_dir: Path) -> dict | None:
    """The build log's entry of ``nb`` when its executed page may be kept (its source,
    parameters, library and run store unchanged since it ran: ``reuse.reusable``), else None."""
    previous = booklog.read(runs_dir)["notebooks"].get(nb.name)
    return previous if reuse.reusable(previous, nb.profile, key, store_digest, out_dir / f"{nb.name}.ipynb") else None


def _run_as_jobs(selected: list[Notebook], executor: str, root: Path, runs_dir: Path, build_dir: Path,
                 kernel_name: str, parallel: int, cluster: Any) -> dict[str, float]:
    """Run the selection as jobs, then give each swept notebook the seeds that finished.
    Returns each notebook's job wall time (summed over its seeds' jobs)."""
    from . import jobs as jobs_module

    planned = jobs_module.plan(selected)
    results = jobs_module.run_jobs(planned, {nb.name: str(nb.ipynb) for nb in selected}, executor=executor,
                                   root=root, runs_dir=runs_dir, build_dir=build_dir, kernel=kernel_name,
                                   parallel=parallel, cluster=cluster)
    failed = [r for r in results if r["status"] != "ok"]
    for r in failed:
        print(f"[weirdgen.book.build] job {r['job']} failed: {r.get('error', '?')}", file=sys.stderr, flush=True)
    seeds = jobs_module.finished_seeds(planned, results)
    unfinished = jobs_module.finished_seeds(planned, results, finished=False)
    for nb in selected:
        if nb.name in seeds:
            if not seeds[nb.name]:
                raise NotebookFailed(f"notebook {nb.name}: no seed's job finished (see build/jobs/)")
            nb.parameters["seeds"] = seeds[nb.name]
            if "seeds_failed" in nb.known:  # the chapter says which seeds it lacks, and why
                nb.parameters["seeds_failed"] = unfinished[nb.name]
    unswept_failed = {r["job"] for r in failed} & {nb.name for nb in selected}
    if unswept_failed:
        raise NotebookFailed(f"job(s) {', '.join(sorted(unswept_failed))} failed; see build/jobs/")
    seconds: dict[str, float] = {}
    for job, result in zip(planned, results):
        if result["status"] == "ok":
            seconds[job.notebook] = round(seconds.get(job.notebook, 0.0) + result.get("wall_seconds", 0.0), 2)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m weirdgen.book.build",
        description="Execute the book's notebooks with papermill under a parameter profile.",
    )
    parser.add_argument("--profile", default="cpu", help="params/<profile>.yaml (default: cpu)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this notebook (stem with or without NN_; repeat or comma-separate)")
    parser.add_argument("--notebooks-dir", default="notebooks")
    parser.add_argument("--out-dir", default="book/chapters")
    parser.add_argument("--params-dir", default="params")
    parser.add_argument("--runs-dir", default=None, help="run store (default: $WEIRDGEN_RUNS_DIR or runs/)")
    parser.add_argument("--build-dir", default="build", help="converted and partial notebooks (default: build/)")
    parser.add_argument("--root", default=".", help="repository root: notebooks run there (default: .)")
    parser.add_argument("--kernel", default=KERNEL_NAME, help="Jupyter kernel name (default: python3)")
    parser.add_argument("--executor", choices=["none", "local", "slurm"], default="none",
                        help="run every notebook (and every seed of a sweep) as a submitit job first")
    parser.add_argument("--jobs", type=int, default=2, help="local executor: jobs at a time, sharing the cores")
    parser.add_argument("--cluster", type=Path, default=None, help="Slurm settings (e.g. params/cluster.yaml)")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--gpus", type=int, default=None)
    parser.add_argument("--time-min", type=int, default=None)
    parser.add_argument("--mem-gb", type=int, default=None)
    parser.add_argument("--execute-all", action="store_true",
                        help="run every notebook, even one whose inputs are unchanged since its page was made")
    args = parser.parse_args(argv)

    _configure_logging()
    try:
        cluster = None
        if args.executor == "slurm":
            from .jobs import ClusterSettings

            cluster = ClusterSettings.load(args.cluster, partition=args.partition, gpus=args.gpus,
                                           time_min=args.time_min, mem_gb=args.mem_gb)
        build(
            args.profile,
            root=args.root,
            notebooks_dir=args.notebooks_dir,
            out_dir=args.out_dir,
            params_dir=args.params_dir,
            runs_dir=args.runs_dir,
            build_dir=args.build_dir,
            only=args.only,
            kernel_name=args.kernel,
            executor=args.executor,
            parallel=args.jobs,
            cluster=cluster,
            execute_all=args.execute_all,
        )
    except (BuildError, UserError) as exc:
        print(redact(str(exc)), file=sys.stderr)
        return 2
    except NotebookFailed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
