"""Fixtures and markers shared by the whole suite.

- ``@pytest.mark.needs_mirror``: the test reads the paper's data from the local mirror
  named by ``WEIRDGEN_DATA_DIR`` (CI sets it to ``../shared/paper_data``); it is skipped
  when the variable is unset or names no folder. The ``mirror`` fixture gives its path.
- ``@pytest.mark.slow``: the test runs a real model (training, sampling, a judge, the
  smoke book, the llama.cpp server). ``make test-fast`` leaves these out; ``make test``
  runs everything. A test that asks for the ``server`` fixture is slow by definition.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CANARY = "sk-canary-5f1d2c3b4a5e6f7a8b9c0d1e2f3a4b5c"
SKIP_REASON = "set WEIRDGEN_DATA_DIR to a local mirror of the paper's data (e.g. ../shared/paper_data)"


def mirror_dir() -> Path | None:
    """The local mirror of the paper's data, or None when there is none."""
    value = os.environ.get("WEIRDGEN_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_mirror: reads the paper's data from WEIRDGEN_DATA_DIR")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_mirror") is not None and mirror_dir() is None:
        pytest.skip(SKIP_REASON)


@pytest.fixture
def mirror() -> Path:
    """The mirror's folder; the test is skipped without one."""
    found = mirror_dir()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """The whole book built on the smoke profile as the `cpu` book builds: two local jobs
    at a time into one run store, then the pass that renders the pages from it (the folder
    holds book/, runs/, build/ and computed.log, the jobs' record of what each computed,
    ``WEIRDGEN_COMPUTE_LOG``); built once per session."""
    mathjax = ROOT / "book" / "_static" / "mathjax"
    if not (mathjax / "es5" / "tex-mml-chtml.js").exists():
        pytest.skip("MathJax not fetched; run `make mathjax`")
    work = tmp_path_factory.mktemp("smoke")
    book = work / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "chapters", "mathjax"))
    (book / "_static" / "mathjax").symlink_to(mathjax, target_is_directory=True)
    # A secret the notebooks can see but must never print (OPENAI_API_KEY itself would
    # make the report card call the API).
    os.environ.pop("OPENAI_API_KEY", None)
    from weirdgen.book import build

    with pytest.MonkeyPatch.context() as env:  # the jobs are subprocesses: they see these through it
        env.setenv("HF_TOKEN", CANARY)
        env.setenv("WEIRDGEN_COMPUTE_LOG", str(work / "computed.log"))
        rc = build.main(["--root", str(ROOT), "--profile", "smoke", "--out-dir", str(book / "chapters"),
                         "--runs-dir", str(work / "runs"), "--build-dir", str(work / "build"),
                         "--executor", "local", "--jobs", "2"])
    assert rc == 0, "a notebook failed on the smoke profile"
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work
