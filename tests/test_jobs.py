"""Sweeps as jobs (weirdgen.book.jobs): the job plan, the cluster settings, the store's
locks, a seed sweep through submitit's Slurm executor (against stand-in Slurm commands),
and two chapters run concurrently through submitit's local executor into one run store,
against the smoke book's sequential run."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import pytest
from test_build import HEADER

from weirdgen import report
from weirdgen.book import build, jobs
from weirdgen.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


class NB:
    def __init__(self, name, parameters, known):
        self.name, self.parameters, self.known = name, parameters, known


def test_a_swept_chapter_becomes_one_job_per_seed_and_the_status_page_none():
    planned = jobs.plan([NB("05_us_presidents", {"seeds": [0, 1, 2], "epochs": 2}, {"seeds": {}, "epochs": {}}),
                         NB("01_old_bird_names", {"seeds": [0]}, {"seeds": {}}),
                         NB("03_israeli_dishes", {}, {"epochs": {}}),
                         NB("99_status", {}, {})])
    assert [j.label for j in planned] == ["05_us_presidents-seed0", "05_us_presidents-seed1",
                                          "05_us_presidents-seed2", "01_old_bird_names", "03_israeli_dishes"]
    assert planned[1].parameters == {"seeds": [1], "epochs": 2}
    results = [{"job": "05_us_presidents-seed0", "status": "ok"}, {"job": "05_us_presidents-seed1", "status": "failed"},
               {"job": "05_us_presidents-seed2", "status": "ok"}]
    assert jobs.finished_seeds(planned, results) == {"05_us_presidents": [0, 2]}


def test_a_default_seed_list_in_the_notebook_is_swept_too():
    planned = jobs.plan([NB("05_us_presidents", {}, {"seeds": {"default": "[0, 1]"}})])
    assert [j.seed for j in planned] == [0, 1]


def test_cluster_settings_refuse_unknown_keys_and_take_flags(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("partition: gpu\ngpus: 2\nqueue: x\n")
    with pytest.raises(jobs.JobsError, match=r"cluster.yaml: unknown setting\(s\) \['queue'\]"):
        jobs.ClusterSettings.load(path)
    path.write_text("partition: gpu\ngpus: 2\n")
    settings = jobs.ClusterSettings.load(path, gpus=4, time_min=None)
    assert (settings.partition, settings.gpus, settings.time_min) == ("gpu", 4, 24 * 60)
    with pytest.raises(jobs.JobsError, match="no such file"):
        jobs.ClusterSettings.load(tmp_path / "missing.yaml")
    assert jobs.ClusterSettings.load(ROOT / "params" / "cluster.yaml").gpus == 1


def test_the_cluster_file_is_not_a_profile():
    assert "cluster" not in build.available_profiles(ROOT / "params")
    with pytest.raises(build.BuildError, match="unknown profile 'cluster'"):
        build.load_profile(ROOT / "params", "cluster")


def test_a_lock_makes_the_second_process_wait_for_the_first(tmp_path):
    store = RunStore(tmp_path)
    order = []

    def worker(name, hold):
        with store.lock("same"):
            order.append(f"{name} in")
            time.sleep(hold)
            order.append(f"{name} out")

    first = threading.Thread(target=worker, args=("a", 0.3))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=worker, args=("b", 0))
    second.start()
    first.join()
    second.join()
    assert order == ["a in", "a out", "b in", "b out"]


def _stored(runs: Path, stage: str) -> dict:
    return {path.name: json.loads(path.read_text()) for path in sorted((runs / stage).glob("*.json"))}


@pytest.mark.slow
@pytest.mark.needs_mirror
def test_a_sequential_run_matches_the_smoke_books_concurrent_local_jobs(tmp_path, smoke_book):
    """The smoke book is built as the `cpu` book is, two local jobs at a time into one
    store: no result computed twice, by at least two processes. Chapters 03 and 07 (07
    reuses 03's adapter and samples) then run again in one process, on both cores, into a
    fresh store: what they compute is what the jobs stored."""
    lines = [line for line in (smoke_book / "computed.log").read_text().split("\n") if line]
    computed = [line.rsplit(" ", 1)[0] for line in lines]
    twice = sorted({c for c in computed if computed.count(c) > 1})
    assert not twice, f"computed twice: {twice[:5]}"
    assert len({line.rsplit(" ", 1)[1] for line in lines}) >= 2  # the jobs ran in two processes
    sequential = tmp_path / "runs"
    rc = build.main(["--root", str(ROOT), "--profile", "smoke", "--only", "israeli_dishes,dishes_mechanism",
                     "--out-dir", str(tmp_path / "chapters"), "--runs-dir", str(sequential),
                     "--build-dir", str(tmp_path / "build")])
    assert rc == 0
    concurrent = smoke_book / "runs"
    for stage in ("samples", "verdicts"):  # what a sampled or judged claim is computed from
        ours, theirs = _stored(sequential, stage), _stored(concurrent, stage)
        assert ours.keys() <= theirs.keys(), f"{stage}: keys the concurrent jobs never made"
        # Bit for bit, except under the edit along chapter 07's year shift. That shift
        # (norm 0.19 on the smoke model) is the difference of two means of residuals of
        # norm ~75, computed from the finetuned model's activations, which a local job's
        # one thread gets 1e-7 (relative) apart from a two-thread run's; the direction
        # moves by 1e-4, projecting it out moves the residual by ~1e-2, and a sampled token
        # can flip (measured: 3 of 4 smoke samples). Its key is where the direction came
        # from, so both runs file those samples under the same entry.
        exact = {k: v for k, v in ours.items() if '"shift direction"' not in v["about"]}
        assert {k: v["sha256"] for k, v in exact.items()} == {k: theirs[k]["sha256"] for k in exact}
    samples = _stored(sequential, "samples")
    edited = [v["about"] for v in samples.values() if "intervention=" in v["about"]]
    assert any('"shift direction"' not in about for about in edited)  # the SAE-feature edits were compared
    # Teacher-forced log-probabilities are float32 sums: a local job has one of the two
    # cores, the sequential run both, and the thread count changes the order of
    # summation (measured: up to 1.2e-3 nats on a sum of -54.3, 2.3e-5 relative).
    # The same entries, to well under a rounding of any reported figure.
    ours, theirs = _stored(sequential, "logprobs"), _stored(concurrent, "logprobs")
    assert ours and ours.keys() <= theirs.keys()
    for key, entry in ours.items():
        value, other = entry["value"], theirs[key]["value"]
        assert value.keys() == other.keys(), key
        for field, number in value.items():
            if isinstance(number, float):
                assert math.isclose(number, other[field], rel_tol=2e-4, abs_tol=1e-3), (key, field)
            else:
                assert number == other[field], (key, field)


def test_a_swept_chapter_is_told_which_seeds_did_not_finish(monkeypatch, tmp_path):
    def fake_run_jobs(planned, ipynbs, **kw):
        return [{"job": j.label, "status": "failed" if j.seed == 1 else "ok"} for j in planned]

    monkeypatch.setattr(jobs, "run_jobs", fake_run_jobs)
    swept = NB("05_us_presidents", {"seeds": [0, 1, 2]}, {"seeds": {}, "seeds_failed": {}})
    quiet = NB("02_german_city_names", {"seeds": [0, 1]}, {"seeds": {}})  # does not declare seeds_failed
    for nb in (swept, quiet):
        nb.ipynb = tmp_path / f"{nb.name}.ipynb"
    build._run_as_jobs([swept, quiet], "local", ROOT, tmp_path, tmp_path, "python3", 2, None)
    assert swept.parameters == {"seeds": [0, 2], "seeds_failed": [1]}
    assert quiet.parameters == {"seeds": [0]}
    assert "did not finish" in report.seeds_line([0, 2], [1]).data
    assert report.seeds_line([0, 1], []).data == "Seeds shown: 0, 1 (every seed asked for)."


SWEPT = HEADER + """
# %% tags=["parameters"]
profile = "cpu"
seeds = [0, 1, 2]
seeds_failed = []

# %%
if seeds == [1]:
    raise RuntimeError("seed 1 ran out of time")
print(f"seeds={seeds} failed={seeds_failed}")
"""


def test_a_sweep_on_slurm_runs_each_seed_as_a_job_and_the_book_pass_names_the_lost_one(tmp_path, monkeypatch):
    """``--executor slurm`` through submitit's own Slurm executor, against stand-in Slurm
    commands that run each batch script on this machine (tests/fake_slurm.py)."""
    import fake_slurm
    from test_build import make_project, outputs_text

    fake_slurm.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "slurm"))
    root = make_project(tmp_path / "project", {"05_swept": SWEPT}, "common: {}\n")
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("partition: gpu-a100\ngpus: 1\ncpus: 4\ntime_min: 90\nmem_gb: 32\nextra: {account: lab}\n")
    rc = build.main(["--root", str(root), "--profile", "cpu", "--executor", "slurm", "--cluster", str(cluster),
                     "--time-min", "120", "--runs-dir", str(root / "runs"), "--build-dir", str(root / "build")])
    assert rc == 0
    scripts = sorted((tmp_path / "slurm").glob("*.sbatch"))
    assert len(scripts) == 3  # one job per seed; the book pass renders without Slurm
    script = scripts[0].read_text()
    for option in ("--partition=gpu-a100", "--gpus-per-node=1", "--cpus-per-task=4", "--time=120", "--mem=32GB",
                   "--account=lab"):
        assert f"#SBATCH {option}" in script, option
    page = outputs_text(root / "book" / "chapters" / "05_swept.ipynb")
    assert "seeds=[0, 2] failed=[1]" in page
