"""weirdgen.book.build: the batch runner that executes the book's notebooks.

These tests build a throwaway project in tmp_path (two or three tiny py:percent
notebooks and a params file) and run real papermill kernels on it, a second or two each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
try:
    from weirdgen.book import booklog
    from weirdgen.book import build as wb
except ImportError:  # source tree without `pip install -e .`
    sys.path.insert(0, str(ROOT / "lib"))
    from weirdgen.book import booklog
    from weirdgen.book import build as wb

HEADER = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""

HELLO = HEADER + """
# %% [markdown]
# # Hello

# %% tags=["parameters"]
greeting = "hi"
model = "default-model"
profile = "cpu"

# %%
import os
print(f"greeting={greeting} model={model} profile={profile}")
print("env says", os.environ.get("WEIRDGEN_TEST_API_KEY", "nothing"))
"""

BOOM = HEADER + """
# %% tags=["parameters"]
n = 1

# %%
print("about to fail")

# %%
raise ValueError(f"boom {n}")
"""

AFTER = HEADER + """
# %%
print("should never run")
"""

SECRET = "sk-test-0123456789abcdefSECRETVALUE"


def make_project(root: Path, notebooks: dict[str, str], params: str, profile: str = "cpu") -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    for name, text in notebooks.items():
        (root / "notebooks" / f"{name}.py").write_text(text)
    (root / "params" / f"{profile}.yaml").write_text(params)
    return root


def run_build(root: Path, *extra: str) -> int:
    return wb.main(["--root", str(root), "--profile", "cpu", *extra])


def read_log(root: Path) -> dict:
    return json.loads((root / "runs" / "book_log.json").read_text())


def outputs_text(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


@pytest.fixture(autouse=True)
def _no_inherited_runs_dir(monkeypatch):
    monkeypatch.delenv("WEIRDGEN_RUNS_DIR", raising=False)


def test_parameters_are_injected_and_secrets_stay_out(tmp_path, monkeypatch, capsys):
    root = make_project(
        tmp_path,
        {"01_hello": HELLO},
        "common:\n  model: smollm2-135m-instruct\nhello:\n  greeting: bonjour\n",
    )
    monkeypatch.setenv("WEIRDGEN_TEST_API_KEY", SECRET)
    monkeypatch.setenv("WEIRDGEN_TEST_TOKEN", SECRET + "-token")

    assert run_build(root) == 0

    out = root / "book" / "chapters" / "01_hello.ipynb"
    text = outputs_text(out)
    assert "greeting=bonjour model=smollm2-135m-instruct profile=cpu" in text
    nb = json.loads(out.read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {
        "model": "smollm2-135m-instruct",
        "greeting": "bonjour",
        "profile": "cpu",
    }
    # the notebook printed the key: masked in the saved notebook and in the log output
    raw = out.read_text()
    assert SECRET not in raw and "[redacted]" in text
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err

    log = read_log(root)
    entry = log["notebooks"]["01_hello"]
    assert entry["status"] == "ok" and entry["profile"] == "cpu" and entry["name"] == "01_hello"
    assert entry["wall_seconds"] > 0
    assert entry["started_at"].endswith("+00:00")
    assert log["build_status"] == "ok" and log["build_wall_seconds"] >= entry["wall_seconds"]
    assert "build_started_at" in log
    assert not (root / "build" / "partial" / "01_hello.ipynb").exists()  # moved into place


def test_a_page_whose_inputs_are_unchanged_is_kept_and_any_change_runs_it_again(tmp_path, capsys):
    root = make_project(tmp_path, {"01_hello": HELLO, "02_quiet": BOOM.replace("raise ValueError", "print")},
                        "common: {}\nhello:\n  greeting: hallo\n")
    out = root / "book" / "chapters" / "01_hello.ipynb"

    def ran(*extra: str) -> list[str]:
        capsys.readouterr()
        assert run_build(root, *extra) == 0
        printed = capsys.readouterr().out
        return [name for name in ("01_hello", "02_quiet") if f"{name} (profile cpu) ..." in printed]

    assert ran() == ["01_hello", "02_quiet"]
    made = out.read_bytes()
    assert ran() == []  # nothing changed: both pages kept, untouched
    assert out.read_bytes() == made and "kept_at" in read_log(root)["notebooks"]["01_hello"]
    assert ran("--execute-all") == ["01_hello", "02_quiet"]
    (root / "params" / "cpu.yaml").write_text("common: {}\nhello:\n  greeting: salut\n")
    assert ran() == ["01_hello"]  # its parameters
    (root / "runs" / "samples").mkdir(parents=True)
    (root / "runs" / "samples" / "new.json").write_text("{}")
    assert ran() == ["01_hello", "02_quiet"]  # the run store: every page
    out.write_text(out.read_text().replace("salut", "edited"))
    assert ran() == ["01_hello"] and "edited" not in out.read_text()  # a page edited by hand
    out.unlink()
    assert ran() == ["01_hello"] and out.exists()  # a page removed
    (root / "notebooks" / "02_quiet.py").write_text(BOOM.replace("raise ValueError", "print").replace("n = 1", "n = 2"))
    assert ran() == ["02_quiet"]  # its source
    assert ran() == []


def test_the_jobs_phase_computes_only_the_notebooks_whose_pages_the_pass_would_not_keep(tmp_path, monkeypatch):
    from weirdgen.book import jobs

    root = make_project(tmp_path, {"01_hello": HELLO, "02_quiet": BOOM.replace("raise ValueError", "print")},
                        "common: {}\nhello:\n  greeting: hallo\n")
    submitted: list[list[str]] = []

    def record(planned, ipynbs, **settings):  # the jobs' work is the pass's to redo here; only the plan matters
        submitted.append([job.notebook for job in planned])
        return [{"job": job.label, "status": "ok", "wall_seconds": 1.5} for job in planned]

    monkeypatch.setattr(jobs, "run_jobs", record)
    local = ("--executor", "local", "--jobs", "2")
    assert run_build(root, *local) == 0
    assert submitted == [["01_hello", "02_quiet"]]
    assert read_log(root)["notebooks"]["01_hello"]["job_seconds"] == 1.5
    assert run_build(root, *local) == 0 and submitted[-1] == []  # a cached rerun computes nothing
    (root / "params" / "cpu.yaml").write_text("common: {}\nhello:\n  greeting: salut\n")
    assert run_build(root, *local) == 0 and submitted[-1] == ["01_hello"]
    assert run_build(root, *local, "--execute-all") == 0 and submitted[-1] == ["01_hello", "02_quiet"]


def test_a_profile_that_extends_another_keeps_its_pages_and_runs_only_its_own_sections(tmp_path, capsys):
    quiet = BOOM.replace("raise ValueError", "print")
    root = make_project(tmp_path, {"01_hello": HELLO, "02_quiet": quiet}, "common: {}\nhello:\n  greeting: hallo\n")
    (root / "params" / "ladder.yaml").write_text("extends: cpu\nquiet:\n  n: 5\n")
    assert run_build(root) == 0
    capsys.readouterr()
    assert wb.main(["--root", str(root), "--profile", "ladder"]) == 0
    printed = capsys.readouterr().out
    assert "01_hello kept" in printed and "02_quiet (profile ladder) ..." in printed
    notebooks = read_log(root)["notebooks"]
    assert notebooks["01_hello"]["profile"] == "cpu" and notebooks["02_quiet"]["profile"] == "ladder"
    quiet_nb = json.loads((root / "book" / "chapters" / "02_quiet.ipynb").read_text())
    assert quiet_nb["metadata"]["papermill"]["parameters"] == {"n": 5, "profile": "ladder"}
    assert read_log(root)["build_profile"] == "ladder"


@pytest.mark.parametrize(
    "files, message",
    [
        ({"ladder": "extends: cpu\ncommon:\n  greeting: x\n"}, "params/ladder.yaml: a profile that extends 'cpu' "
                                                                 "cannot set 'common'"),
        ({"ladder": "extends: gpu\n"}, "unknown profile 'gpu'"),
        ({"ladder": "extends: other\n", "other": "extends: ladder\n"}, "goes round in a circle (ladder -> other -> "
                                                                        "ladder)"),
        ({"ladder": "extends: [cpu]\n"}, "'extends' must name a profile"),
    ],
)
def test_a_bad_extends_is_one_line_before_anything_runs(tmp_path, capsys, files, message):
    root = make_project(tmp_path, {"01_hello": HELLO}, "common: {}\n")
    for name, text in files.items():
        (root / "params" / f"{name}.yaml").write_text(text)
    assert wb.main(["--root", str(root), "--profile", "ladder"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (root / "runs").exists()


def test_unknown_parameter_is_rejected_before_anything_runs(tmp_path):
    root = make_project(
        tmp_path,
        {"01_hello": HELLO, "02_boom": BOOM},
        "common:\n  model: smollm2-135m-instruct\nhello:\n  greting: typo\n",
    )
    env = {k: v for k, v in os.environ.items() if k != "WEIRDGEN_RUNS_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "weirdgen.book.build", "--profile", "cpu"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "params/cpu.yaml: unknown parameter 'greting' for notebook 01_hello (known: greeting, model, profile)"
    )
    assert not (root / "book" / "chapters").exists()
    assert not (root / "runs").exists()
    assert not (root / "build" / "partial").exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ("common:\n  modell: x\n", "params/cpu.yaml: unknown parameter 'modell' in common"),
        ("helo:\n  greeting: x\n", "params/cpu.yaml: section 'helo' matches no notebook"),
        ("hello:\n  profile: paper\n", "'hello.profile' is reserved"),
        ("hello:\n  openai_api_key: x\n", "looks like a credential"),
    ],
)
def test_other_parameter_errors(tmp_path, capsys, params, message):
    root = make_project(tmp_path, {"01_hello": HELLO}, params)
    assert run_build(root) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (root / "runs").exists()


def test_unknown_profile_lists_profiles(tmp_path, capsys):
    root = make_project(tmp_path, {"01_hello": HELLO}, "common: {}\n")
    (root / "params" / "smoke.yaml").write_text("common: {}\n")
    assert wb.main(["--root", str(root), "--profile", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown profile 'gpu'" in err and "(profiles: cpu, smoke)" in err and "\n" not in err


def test_failing_notebook_stops_the_pass(tmp_path, capsys):
    root = make_project(
        tmp_path,
        {"01_hello": HELLO, "02_boom": BOOM, "03_after": AFTER},
        "boom:\n  n: 3\n",
    )
    chapters = root / "book" / "chapters"
    chapters.mkdir(parents=True)
    previous = b'{"cells": [], "note": "finished by an earlier build"}'
    (chapters / "02_boom.ipynb").write_bytes(previous)
    (root / "runs").mkdir()
    other = {"name": "00_other", "profile": "paper", "started_at": "2025-01-01T00:00:00+00:00",
             "wall_seconds": 12.5, "status": "ok"}
    (root / "runs" / "book_log.json").write_text(json.dumps({"notebooks": {"00_other": other}}))

    assert run_build(root) == 1

    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notebook ")]
    assert lines == [
        "notebook 02_boom failed in cell 3: ValueError: boom 3 (partial output: build/partial/02_boom.ipynb)"
    ]
    assert (chapters / "02_boom.ipynb").read_bytes() == previous  # untouched
    assert (chapters / "01_hello.ipynb").exists()
    assert not (chapters / "03_after.ipynb").exists()
    partial = root / "build" / "partial" / "02_boom.ipynb"
    assert "about to fail" in outputs_text(partial)

    log = read_log(root)  # still valid JSON
    assert log["notebooks"]["00_other"] == other  # kept
    assert log["notebooks"]["01_hello"]["status"] == "ok"
    assert log["notebooks"]["02_boom"]["status"] == "failed"
    assert log["notebooks"]["02_boom"]["error"] == "ValueError: boom 3"
    assert "03_after" not in log["notebooks"]
    assert log["build_status"] == "failed" and isinstance(log["build_wall_seconds"], float)
    assert [p.name for p in (root / "runs").iterdir()] == ["book_log.json"]  # no temp files


def test_log_write_is_atomic(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    booklog.write(runs, {"notebooks": {"a": {"name": "a", "status": "ok"}}})
    before = (runs / "book_log.json").read_text()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(wb.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        booklog.write(runs, {"notebooks": {}})
    assert (runs / "book_log.json").read_text() == before
    assert [p.name for p in runs.iterdir()] == ["book_log.json"]


def test_discovery_order_and_only(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    for name in ["99_status.py", "02_b.py", "01_a.py", "helpers.py", "1_bad.py", "10_c.py"]:
        (nbdir / name).write_text(HEADER)
    found = wb.discover(nbdir)
    assert [nb.name for nb in found] == ["01_a", "02_b", "10_c", "99_status"]
    assert [nb.name for nb in wb.select(found, ["b,status"])] == ["02_b", "99_status"]
    assert [nb.name for nb in wb.select(found, ["01_a"])] == ["01_a"]
    with pytest.raises(wb.BuildError, match="no notebook named 'zzz'"):
        wb.select(found, ["zzz"])


def test_converted_notebook_keeps_source_timestamp(tmp_path):
    # jupytext.toml pairs notebooks/*.py with build/notebooks/*.ipynb: a newer .ipynb
    # would make JupyterLab refuse to open the .py
    root = make_project(tmp_path, {"01_hello": HELLO}, "common: {}\n")
    src = root / "notebooks" / "01_hello.py"
    os.utime(src, (1_600_000_000, 1_600_000_000))
    out = wb.convert(wb.Notebook(src), root / "build" / "notebooks")
    assert out.stat().st_mtime == src.stat().st_mtime
    assert re.search(r'"language": "python"', out.read_text())


def test_status_page_runs_and_tabulates_the_log(tmp_path):
    from weirdgen.book import status

    root = make_project(tmp_path, {"01_hello": HELLO}, "common:\n  model: smollm2-135m-instruct\n")
    (root / "notebooks" / "99_status.py").write_text((ROOT / "notebooks" / "99_status.py").read_text())
    assert run_build(root) == 0

    log = read_log(root)
    assert log["notebooks"]["99_status"]["status"] == "ok"
    table = status.book_log_frame(log)
    assert table["notebook"].tolist() == ["01_hello"]  # the status page leaves itself out
    assert {"profile", "status", "wall_seconds", "wall", "peak_rss_mb"} <= set(table.columns)
    total = status.with_total(table).iloc[-1]
    assert total["notebook"] == "total" and total["wall_seconds"] == pytest.approx(table["wall_seconds"].sum())

    page = outputs_text(root / "book" / "chapters" / "99_status.ipynb")
    for needle in ("transformers", "papermill", "jupyter-book", "cores usable here", "01_hello", "total"):
        assert needle in page


def test_status_frame_drops_notebooks_that_no_longer_exist(tmp_path):
    from weirdgen.book import status

    (tmp_path / "01_a.py").write_text("")
    log = {
        "build_notebooks_dir": str(tmp_path),
        "notebooks": {
            "01_a": {"name": "01_a", "profile": "cpu", "status": "ok", "wall_seconds": 61},
            "02_gone": {"name": "02_gone", "profile": "smoke", "status": "failed", "wall_seconds": 1},
        },
    }
    table = status.book_log_frame(log)
    assert table["notebook"].tolist() == ["01_a"] and table["wall"].tolist() == ["0:01:01"]
    assert "peak_rss_mb" not in table
    assert status.book_log_frame(log, drop_missing=False)["notebook"].tolist() == ["01_a", "02_gone"]


def test_log_keeps_one_entry_per_pass_and_the_longest_pass_per_profile(tmp_path):
    from weirdgen.book import status

    def run(started, wall, profile="cpu", state="ok"):
        base = {"name": "07_x", "profile": profile, "started_at": started}
        booklog.update(tmp_path, entry={**base, "status": "running"})
        booklog.update(tmp_path, entry={**base, "status": state, "wall_seconds": wall, "peak_rss_mb": 100.0})

    run("t1", 1161.0)  # the cold pass
    for i in range(2, 9):
        run(f"t{i}", 40.0 + i)  # cached rebuilds push it out of the history
    run("t9", 5000.0, state="failed")
    run("t10", 9.0, profile="smoke")
    entry = json.loads((tmp_path / "book_log.json").read_text())["notebooks"]["07_x"]
    assert [r["started_at"] for r in entry["history"]] == ["t6", "t7", "t8", "t9", "t10"]
    assert {p: r["wall_seconds"] for p, r in entry["longest"].items()} == {"cpu": 1161.0, "smoke": 9.0}
    frame = status.with_total(status.longest_frame({"notebooks": {"07_x": entry}}, "cpu"))
    assert frame["wall_seconds"].tolist() == [1161.0, 1161.0]


@pytest.mark.needs_mirror
def test_every_shipped_profile_passes_the_preflight(tmp_path, monkeypatch):
    """Each params/*.yaml, against the real notebooks, with the build's own checks
    (names, types, stages, models, judges, data), so that a profile CI cannot run
    (paper, open) still starts where it can; the hub is not asked."""
    from weirdgen.book import preflight

    monkeypatch.setattr(preflight, "check_hub_model", lambda hub_id: None)
    notebooks = wb.discover(ROOT / "notebooks")
    for nb in notebooks:
        nb.ipynb = wb.convert(nb, tmp_path)
        nb.known = wb.inspect_parameters(nb.ipynb)
    profiles = wb.available_profiles(ROOT / "params")
    assert {"cpu", "smoke", "paper", "open", "scale"} <= set(profiles)
    for profile in profiles:
        params, origins, root_profile = wb.load_chain(ROOT / "params", profile, ROOT)
        wb.resolve_parameters(profile, params, notebooks, notebooks, f"params/{profile}.yaml", origins, root_profile)
        for nb in notebooks:
            preflight.check(nb.name, nb.section, nb.known, nb.parameters, f"params/{profile}.yaml")


def test_the_store_digest_sees_results_not_the_build_log_or_locks(tmp_path):
    from weirdgen.book import reuse

    (tmp_path / "samples").mkdir()
    (tmp_path / "sae").mkdir()
    (tmp_path / "samples" / "a.json").write_text('{"sha256": "1"}')
    (tmp_path / "sae" / "w.pt").write_bytes(b"1234")
    first = reuse.store_digest(tmp_path)
    (tmp_path / "book_log.json").write_text("{}")
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "x.lock").write_text("")
    assert reuse.store_digest(tmp_path) == first
    (tmp_path / "sae" / "w.pt").write_bytes(b"12345")
    second = reuse.store_digest(tmp_path)
    (tmp_path / "samples" / "a.json").write_text('{"sha256": "2"}')
    assert len({first, second, reuse.store_digest(tmp_path)}) == 3
