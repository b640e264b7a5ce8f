"""The run store: every trained adapter, sample and verdict, keyed by what determined it.

A result's key is a hash of everything that went into it (data hashes, model
fingerprint, hyperparameters, seeds, sampling and judge settings). Rerunning with
nothing changed finds the result and recomputes nothing; changing one parameter
changes only the keys that depend on it. Files are written to a temporary name and
renamed into place, so an interrupted run never leaves a half-written result.

Every stored result carries what is needed to verify it: a JSON result is kept in a
record with its stage, key, the settings it belongs to and the sha256 of its value; a
tensor file has such a record beside it with the file's sha256. A result that is
unreadable, fails its hash, or has the wrong shape for its stage is recomputed with a
one-line warning naming the stage, the file and its settings, except where recomputing
would pay for API calls again: then it is an error that says which file to remove.
``python -m weirdgen.store verify`` checks a whole store and lists what it would
recompute. Files honour the user's umask, so a store can be shared.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .errors import UserError

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


class Key(str):
    """A cache key: the short hash, which also remembers the settings it was made of
    (``parts``), so that a message about a stored result can name them."""

    parts: dict

    def __new__(cls, digest: str, parts: dict):
        key = super().__new__(cls, digest)
        key.parts = parts
        return key


def cache_key(**parts: Any) -> Key:
    """A short, stable hash of named inputs (order of keywords does not matter)."""
    canonical = _canonical(parts)
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False)
    return Key(hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16], canonical)


def describe(parts: dict | None, limit: int = 160) -> str:
    """The settings of a key in one short line: each part, its value cut to 40 characters."""
    if not parts:
        return "settings unknown"
    shown = []
    for name, value in parts.items():
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        shown.append(f"{name}={text[:40] + '…' if len(text) > 40 else text}")
    line = ", ".join(shown)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def digest(value: Any) -> str:
    """sha256 of a JSON value in canonical form: what a record's ``sha256`` pins."""
    blob = json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# Digests this process computed, by what the file system says of the file then: a
# cached rerun verifies each adapter once, not once per caller (a chapter reads a run's
# seals for its adapter, its losses and its loss table; 242 hashes of 680 MB in chapter 03).
_DIGESTS: dict[tuple, str] = {}
_RACY_NS = 2_000_000_000  # a file's timestamps tick coarsely: trust only those older than this


def file_sha256(path: Path) -> str:
    """The full sha256 hex digest of a file's bytes, read in 1 MiB blocks. Within a process
    a file is read again only if its inode, size, mtime or ctime changed since, or if it
    was written too recently for its timestamps to tell a later write apart ("racy
    git"): a replaced or rewritten file is always hashed anew."""
    st = os.stat(path)
    memo = (os.fspath(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if memo in _DIGESTS:
        return _DIGESTS[memo]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        _DIGESTS[memo] = digest
    return digest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file; mkstemp alone gives 0600


def atomic_write(path: Path, write: Callable[[int, str], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path`` (given its open descriptor,
    which ``write`` closes, and its name), then rename it into place, so a reader never
    sees a half-written result. The file gets the mode the user's umask gives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        write(fd, tmp)
        os.chmod(tmp, FILE_MODE)
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


def note_computed(stage: str, key: str) -> None:
    """Append "stage key pid" to ``$WEIRDGEN_COMPUTE_LOG`` when it is set: how a test of
    concurrent jobs sees that no result was computed twice (one short append per line,
    which POSIX keeps whole)."""
    log = os.environ.get("WEIRDGEN_COMPUTE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{stage} {key} {os.getpid()}\n")


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(_canonical(value), indent=1, ensure_ascii=False))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


FORMAT = 1  # the record layout below; a file without it predates integrity records


class StoreError(UserError):
    """A stored result that cannot be recomputed without paying again, or a store that
    cannot be written."""


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_probs_or_text(value) -> bool:
    if not isinstance(value, dict):
        return False
    if "text" in value:
        return isinstance(value["text"], str)
    return all(isinstance(v, (int, float)) for v in value.values())


# The shape each stage's value must have (beyond its hash): a mismatch is recomputed.
SHAPES: dict[str, Callable[[Any], bool]] = {
    "samples": _is_str_list,
    "answers": lambda v: isinstance(v, str),
    "verdicts": _is_probs_or_text,
    "heldout": lambda v: isinstance(v, dict) and {"ab", "validation"} <= set(v),
    "benign_nll": lambda v: isinstance(v, (int, float)),
    "logprobs": lambda v: isinstance(v, dict) and isinstance(v.get("logprob"), (int, float))
    and isinstance(v.get("tokens"), int),
    "claims": lambda v: isinstance(v, dict) and isinstance(v.get("rows"), list),
    "api_files": lambda v: isinstance(v, dict) and isinstance(v.get("file_id"), str),
    "api_jobs": lambda v: isinstance(v, dict) and isinstance(v.get("job_id"), str),
    "api_models": lambda v: isinstance(v, dict) and isinstance(v.get("model_id"), str),
    "train_epoch": lambda v: isinstance(v, dict) and isinstance(v.get("files"), dict),
}


def record(stage: str, key: str, value: Any) -> dict:
    """What a JSON result is stored as: its value with what verifies it."""
    about = describe(getattr(key, "parts", None))
    return {"format": FORMAT, "stage": stage, "key": str(key), "about": about, "sha256": digest(value),
            "value": _canonical(value)}


def check_record(found: Any, stage: str, key: str) -> str | None:
    """Why ``found`` (a parsed file) is not a sound record of (stage, key), or None."""
    if not isinstance(found, dict) or found.get("format") != FORMAT or "value" not in found:
        return "no integrity record (written before this version, or by hand)"
    if found.get("stage") != stage or found.get("key") != str(key):
        return f"it records {found.get('stage')}/{found.get('key')}, not this result"
    if found.get("sha256") != digest(found["value"]):
        return "its content does not match the sha256 recorded when it was written"
    shape = SHAPES.get(stage)
    if shape is not None and not shape(found["value"]):
        return f"its value does not have the shape of a {stage} result"
    return None


def read_record(path: Path, stage: str, key: str) -> tuple[Any, str | None]:
    """(value, None) for a sound record, else (None, why not); a missing file is
    (None, "missing")."""
    if not path.exists():
        return None, "missing"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__})"
    problem = check_record(found, stage, key)
    return (found["value"], None) if problem is None else (None, problem)


def tensor_problem(path: Path, stage: str, key: str) -> str | None:
    """Why the tensor file ``path`` of (stage, key) is not sound (its sidecar record is
    missing or damaged, or the file does not match the sha256 it records), or None; a
    missing file is "missing"."""
    if not path.exists():
        return "missing"
    recorded, problem = read_record(path.with_name(path.name + ".json"), f"{stage}:file", key)
    if problem is not None:
        return problem
    return None if file_sha256(path) == recorded else "the file does not match the sha256 recorded when it was written"


def warn(message: str) -> None:
    """One line on stderr (the notebooks' output shows it, the book drops it)."""
    print(f"weirdgen: {message}", file=sys.stderr, flush=True)


class RunStore:
    """A folder of results, one record per (stage, key)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else runs_dir()

    def path(self, stage: str, key: str, suffix: str = ".json") -> Path:
        return self.root / stage / f"{key}{suffix}"

    def warn_damaged(self, stage: str, key: str, problem: str) -> None:
        """Report a stored result that its reader found unfit (it will be recomputed)."""
        self._damaged(stage, key, self.path(stage, key), problem, paid=False)

    def _damaged(self, stage: str, key: str, path: Path, problem: str, paid: bool) -> None:
        about = describe(getattr(key, "parts", None))
        if paid:
            raise StoreError(f"{stage} result {path} ({about}) is damaged: {problem}; recomputing it would pay for "
                             f"API calls again, so remove that file to recompute it (or restore it from a copy)")
        warn(f"recomputing {stage} result {path} ({about}): {problem}")

    def get(self, stage: str, key: str, paid: bool = False) -> Any | None:
        """The stored value of (stage, key), or None when it is absent or damaged (a
        damaged one is reported, see ``_damaged``)."""
        path = self.path(stage, key)
        value, problem = read_record(path, stage, key)
        if problem is None:
            return value
        if problem != "missing":
            self._damaged(stage, key, path, problem, paid)
        return None

    def has(self, stage: str, key: str) -> bool:
        """Whether (stage, key) holds a sound result (damaged ones do not count)."""
        return read_record(self.path(stage, key), stage, key)[1] is None

    def put(self, stage: str, key: str, value: Any) -> Any:
        """Store ``value`` for (stage, key), a result just computed, and return it as it
        will be read back."""
        value = self.publish(stage, key, value)
        note_computed(stage, key)
        return value

    def publish(self, stage: str, key: str, value: Any) -> Any:
        """Store what a page showed (its claims, a chapter's table kept for later builds)
        and return it as it will be read back. Every pass that renders the page writes it
        again, so unlike ``put`` it is no computation of ``$WEIRDGEN_COMPUTE_LOG``."""
        rec = record(stage, key, value)
        with self.writing():
            write_json(self.path(stage, key), rec)
        return rec["value"]

    def cached(self, stage: str, key: str, compute: Callable[[], Any], paid: bool = False) -> Any:
        """The stored result for (stage, key), computing and storing it if absent or
        damaged. ``paid``: computing it costs money (an API call), so a damaged result
        is an error rather than paid for again."""
        found = self.get(stage, key, paid)
        return found if found is not None else self.put(stage, key, compute())

    def cached_tensors(self, stage: str, key: str, compute: Callable[[], dict]) -> dict:
        """Like ``cached`` for a dict of tensors (activations, SAE weights), kept as
        safetensors with a record of the file's sha256 beside it."""
        from safetensors.torch import load_file, save_file

        path = self.path(stage, key, ".safetensors")
        sidecar = self.path(stage, key, ".safetensors.json")
        problem = tensor_problem(path, stage, key)
        if problem is None:
            try:
                return load_file(path)
            except Exception as e:  # noqa: BLE001 - any unreadable file is recomputed
                problem = f"unreadable ({type(e).__name__})"
        if problem != "missing":
            self._damaged(stage, key, path, problem, paid=False)
        tensors = {name: t.contiguous() for name, t in compute().items()}

        def write(fd: int, tmp: str) -> None:
            os.close(fd)
            save_file(tensors, tmp)

        with self.writing():
            atomic_write(path, write)
            write_json(sidecar, record(f"{stage}:file", key, file_sha256(path)))
        return load_file(path)

    @contextlib.contextmanager
    def lock(self, name: str):
        """Hold an exclusive lock named ``name`` while computing something that another
        process sharing this store (a job of a sweep) may compute at the same time; the
        second waits, then finds the first's result stored. flock works across processes
        on one machine and, on Linux, on NFS (as fcntl locks); a read-only store that
        cannot hold a lock file runs unlocked, since it computes nothing."""
        import fcntl

        path = self.root / "locks" / f"{name}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")
        except OSError:
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def writing(self):
        """Turn a failed write into one line naming the store and the fix."""
        try:
            yield
        except OSError as e:
            raise StoreError(f"run store {self.root}: cannot write ({e.strerror or type(e).__name__}); it lacks a "
                             "result this needs, so point WEIRDGEN_RUNS_DIR at a writable copy of it") from None

    def verify(self) -> list[tuple[Path, str]]:
        """Every stored result that a run would recompute (or refuse), with why."""
        problems = []
        for path in sorted(self.root.glob("*/*.json")):
            stage, name = path.parent.name, path.name
            if stage in ("train", "datasets") or name.startswith("."):
                continue
            if name.endswith(".safetensors.json"):
                key = name[: -len(".safetensors.json")]
                problem = tensor_problem(path.with_name(f"{key}.safetensors"), stage, key)
                if problem == "missing":
                    problem = "its tensor file is missing"
            else:
                problem = read_record(path, stage, path.stem)[1]
            if problem is not None:
                problems.append((path, problem))
        for path in sorted(self.root.glob("*/*.safetensors")):
            if not path.with_name(path.name + ".json").exists():
                problems.append((path, "no integrity record beside it"))
        from .train import verify_run

        for run_dir in sorted(p for p in (self.root / "train").glob("*") if p.is_dir()):
            problems += verify_run(run_dir)
        return problems


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m weirdgen.store",
                                     description="Check a run store: list every result a run would recompute.")
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("--runs-dir", default=None, help="the store (default: $WEIRDGEN_RUNS_DIR or runs/)")
    args = parser.parse_args(argv)
    store = RunStore(Path(args.runs_dir) if args.runs_dir else None)
    if not store.root.is_dir():
        print(f"{store.root}: no run store there", file=sys.stderr)
        return 2
    problems = store.verify()
    for path, problem in problems:
        print(f"{path.relative_to(store.root)}: {problem}")
    print(f"{store.root}: {len(problems)} result(s) would be recomputed" if problems
          else f"{store.root}: every result verifies")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
