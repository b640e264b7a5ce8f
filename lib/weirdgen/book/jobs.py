"""Sweeps as jobs: every notebook of a build — and every seed of a chapter that sweeps
seeds — runs as its own job through submitit, on a Slurm cluster or as parallel local
processes, into one shared run store; the book pass then renders every chapter from
that store, computing nothing that a job finished.

    python -m weirdgen.book.build --profile open --executor slurm --cluster params/cluster.yaml
    python -m weirdgen.book.build --profile smoke --executor local --jobs 2

One seed's crash or time-out does not lose the others: the book pass gives a swept
chapter only the seeds whose jobs finished, and the build prints which did not.
Sharing one store is safe: every write is atomic, and a training run or a model's
sampling holds a lock (``RunStore.lock``, flock) while it computes, so two jobs that
need the same adapter or the same samples compute them once — the second waits and
reads what the first stored.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError

SKIPPED = {"99_status"}  # reads the build log: rendered by the book pass only
POLL_SECONDS = 1.0  # how often a local build looks for a finished job


class JobsError(UserError):
    """The cluster settings are wrong (one line, naming the file or flag)."""


@dataclass(frozen=True)
class Job:
    notebook: str  # NN_name
    parameters: dict[str, Any]
    seed: int | None = None  # the one seed of a swept chapter's job

    @property
    def label(self) -> str:
        return self.notebook + (f"-seed{self.seed}" if self.seed is not None else "")


def plan(notebooks: list) -> list[Job]:
    """One job per notebook; a notebook whose ``seeds`` parameter lists several seeds
    gets one job per seed (its other parameters unchanged)."""
    jobs = []
    for nb in notebooks:
        if nb.name in SKIPPED:
            continue
        seeds = nb.parameters.get("seeds", nb.known.get("seeds", {}).get("default")) if "seeds" in nb.known else None
        if isinstance(seeds, str):  # papermill's inspect gives defaults as source text
            import ast

            seeds = ast.literal_eval(seeds)
        if isinstance(seeds, (list, tuple)) and len(seeds) > 1:
            jobs += [Job(nb.name, {**nb.parameters, "seeds": [s]}, s) for s in seeds]
        else:
            jobs.append(Job(nb.name, dict(nb.parameters)))
    return jobs


@dataclass
class ClusterSettings:
    """Slurm settings (``params/cluster.yaml`` or flags)."""

    partition: str | None = None
    gpus: int = 1
    cpus: int = 8
    time_min: int = 24 * 60
    mem_gb: int = 64
    extra: dict[str, Any] = field(default_factory=dict)  # passed to submitit as slurm_<name>

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> "ClusterSettings":
        values: dict[str, Any] = {}
        if path is not None:
            import yaml

            if not path.is_file():
                raise JobsError(f"--cluster {path}: no such file (see params/cluster.yaml)")
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            unknown = sorted(set(values) - set(cls.__dataclass_fields__))
            if unknown:
                raise JobsError(f"{path}: unknown setting(s) {unknown} (known: {sorted(cls.__dataclass_fields__)})")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def run_job(job: Job, ipynb: str, out: str, root: str, runs_dir: str, kernel: str, threads: int) -> dict:
    """Execute one job's notebook with papermill (in the job's own process) into ``out``.
    Torch in the kernel uses ``threads`` threads: jobs sharing a machine split its cores."""
    import time

    import papermill

    env = {"WEIRDGEN_RUNS_DIR": runs_dir, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    os.environ.update(env)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    papermill.execute_notebook(ipynb, out, parameters=job.parameters, kernel_name=kernel, cwd=root,
                               progress_bar=False, log_output=False)
    return {"job": job.label, "status": "ok", "wall_seconds": round(time.perf_counter() - t0, 2)}


def run_jobs(jobs: list[Job], ipynbs: dict[str, str], *, executor: str, root: Path, runs_dir: Path,
             build_dir: Path, kernel: str, parallel: int = 2, cluster: ClusterSettings | None = None) -> list[dict]:
    """Submit every job, wait for all, and return one result per job (status "ok" or
    "failed" with the error's first line). Local jobs run ``parallel`` at a time, each
    with its share of this machine's cores."""
    import submitit

    folder = build_dir / "jobs" / "submitit"
    if executor == "local":
        ex = submitit.AutoExecutor(folder=folder, cluster="local")
        ex.update_parameters(timeout_min=24 * 60)
        threads = max(1, (os.cpu_count() or 1) // max(1, parallel))
    elif executor == "slurm":
        cluster = cluster or ClusterSettings()
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        partition = {"slurm_partition": cluster.partition} if cluster.partition else {}
        ex.update_parameters(timeout_min=cluster.time_min, gpus_per_node=cluster.gpus, cpus_per_task=cluster.cpus,
                             mem_gb=cluster.mem_gb, **partition, **{f"slurm_{k}": v for k, v in cluster.extra.items()})
        threads = cluster.cpus
    else:
        raise JobsError(f"--executor {executor}: choose local or slurm")
    def submit(job: Job):
        out = str(build_dir / "jobs" / f"{job.label}.ipynb")
        handle = ex.submit(run_job, job, ipynbs[job.notebook], out, str(root), str(runs_dir), kernel, threads)
        print(f"[weirdgen.book.jobs] submitted {job.label} ({executor})", flush=True)
        return handle

    def result(job: Job, handle) -> dict:
        try:
            found = handle.result()
        except Exception as exc:  # noqa: BLE001 - a failed job is reported, the others go on
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            found = {"job": job.label, "status": "failed", "error": first[:300]}
        print(f"[weirdgen.book.jobs] {job.label}: {found['status']}", flush=True)
        return found

    found: dict[str, dict] = {}
    pending = list(jobs)
    running: list[tuple[Job, Any]] = []
    # Locally ``parallel`` at a time, the next starting as soon as one ends (the chapters'
    # costs differ by 4x, so waves of ``parallel`` would leave cores idle); on Slurm, all at once.
    limit = parallel if executor == "local" else len(jobs)
    while pending or running:
        while pending and len(running) < max(1, limit):
            job = pending.pop(0)
            running.append((job, submit(job)))
        done = [(job, handle) for job, handle in running if handle.done()]
        if not done:
            time.sleep(POLL_SECONDS)
            continue
        for job, handle in done:
            running.remove((job, handle))
            found[job.label] = result(job, handle)
    return [found[job.label] for job in jobs]


def finished_seeds(jobs: list[Job], results: list[dict], finished: bool = True) -> dict[str, list[int]]:
    """Per swept notebook, the seeds whose jobs finished (``finished=False``: those whose
    jobs failed or never reported)."""
    ok = {r["job"] for r in results if r["status"] == "ok"}
    seeds: dict[str, list[int]] = {}
    for job in jobs:
        if job.seed is not None:
            seeds.setdefault(job.notebook, [])
            if (job.label in ok) == finished:
                seeds[job.notebook].append(job.seed)
    return seeds
