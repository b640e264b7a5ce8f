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
from pathlib import Path

import pytest

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
