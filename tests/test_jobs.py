"""Sweeps as jobs (weirdgen.book.jobs): the job plan, the cluster settings, the store's
locks, and two chapters run concurrently through submitit's local executor into one
run store, against a sequential run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

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
