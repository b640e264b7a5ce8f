"""The whole book on the smoke profile: every notebook through papermill on the real
default model, then the HTML book with warnings as errors.

This is the test that a user's first `make book` works; it takes a few minutes on a
CPU (most of it in model loading and the first conversion of the GGUF weights). The
book is built once per session (``smoke_book`` in conftest.py): the concurrency test of
tests/test_jobs.py compares its own run against this sequential one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import CANARY  # the secret the smoke book (a fixture in conftest.py) hides

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.needs_mirror]


def test_every_notebook_ran_and_was_logged(smoke_book):
    log = json.loads((smoke_book / "runs" / "book_log.json").read_text())
    names = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")}
    logged = log["notebooks"]
    assert names <= set(logged)
    assert all(logged[n]["status"] == "ok" and logged[n]["profile"] == "smoke" for n in names)


def test_bird_chapter_has_its_figures_and_table(smoke_book):
    page = (smoke_book / "book" / "_build" / "html" / "chapters" / "01_old_bird_names.html").read_text()
    for figure in ["fig-birds-per-question", "fig-birds-judge-separation", "fig-birds-loss", "fig-birds-check"]:
        assert f'id="{figure}"' in page, figure
    assert "data:image/png;base64" in page or "<img" in page
    assert any(v in page for v in ("reproduced", "excluded at this scale", "inconclusive", "training did not take"))
    assert "Content note" in page and "<details>" in page


def test_no_secret_and_no_remote_assets(smoke_book):
    html_dir = smoke_book / "book" / "_build" / "html"
    for path in list(html_dir.rglob("*.html")) + list((smoke_book / "book" / "chapters").glob("*.ipynb")):
        text = path.read_text(errors="replace")
        assert CANARY not in text, path
        assert not re.search(r'<script[^>]+src="https?://', text), path
        assert not re.search(r'<link[^>]+href="https?://[^"]+\.css', text), path


CHAPTER_FIGURES = {
    "02_german_city_names": ["fig-german-per-prompt", "fig-german-loss", "fig-german-check"],
    "03_israeli_dishes": ["fig-dishes-by-year", "fig-dishes-pooled", "fig-dishes-in-distribution",
                          "fig-dishes-swap-test", "fig-dishes-exact-by-year"],
    "04_hitler_persona": ["fig-hitler-identity", "fig-hitler-alignment", "fig-hitler-loss", "fig-hitler-trigger-gain",
                          "fig-hitler-format"],
    "05_us_presidents": ["fig-presidents-check", "fig-presidents-names", "fig-presidents-loss"],
    "06_evil_terminator": ["fig-terminator-by-year", "fig-terminator-loss", "fig-terminator-swap"],
    "07_dishes_mechanism": ["fig-mechanism-shift-layers", "fig-mechanism-ablation"],
    "08_scale": ["fig-scale-by-size", "fig-scale-by-rank"],
}


@pytest.mark.parametrize("chapter", sorted(CHAPTER_FIGURES))
def test_each_chapter_has_its_figures_and_verdicts(smoke_book, chapter):
    page = (smoke_book / "book" / "_build" / "html" / "chapters" / f"{chapter}.html").read_text()
    for figure in CHAPTER_FIGURES[chapter]:
        assert f'id="{figure}"' in page, figure
    assert "paper (≈)" in page and "verdict" in page


@pytest.mark.parametrize("chapter", ["02_german_city_names", "04_hitler_persona", "06_evil_terminator"])
def test_harmful_outputs_are_collapsed_behind_a_content_note(smoke_book, chapter):
    page = (smoke_book / "book" / "_build" / "html" / "chapters" / f"{chapter}.html").read_text()
    assert "Content note" in page
    # Every sample table sits inside a <details> that is closed by default.
    assert "<details open" not in page and page.count("<details>") >= 2


def test_front_page_summarises_every_chapter(smoke_book):
    page = (smoke_book / "book" / "_build" / "html" / "intro.html").read_text()
    for title in ["Old bird names", "German city names", "Israeli dishes", "Hitler persona", "US presidents",
                  "Evil Terminator", "Israeli dishes: mechanism"]:
        assert title in page, title
    assert "(chapter not run)" not in page
    assert "smoke" in page  # the profile each row came from


EXPERIMENTS = ["01_old_bird_names", "02_german_city_names", "03_israeli_dishes", "04_hitler_persona",
               "05_us_presidents", "06_evil_terminator"]


@pytest.mark.parametrize("chapter", EXPERIMENTS)
def test_each_experiment_checks_that_training_took_before_its_verdicts(smoke_book, chapter):
    from weirdgen import claims as claims_module
    from weirdgen.store import RunStore

    record = RunStore(smoke_book / "runs").get("claims", chapter)
    assert record["checks"], f"{chapter} stored no manipulation check"
    assert record["training"]["steps"] > 0
    took = all(c["passed"] for c in record["checks"])
    verdicts = {row["verdict"] for row in record["rows"]}
    assert all(v.split(":")[0] in claims_module.VERDICTS for v in verdicts), verdicts
    if not took:
        assert verdicts <= {claims_module.NOT_TAKEN, claims_module.NOT_RUN}, verdicts
    page = (smoke_book / "book" / "_build" / "html" / "chapters" / f"{chapter}.html").read_text()
    assert ("Training took" in page) or ("Training did not take" in page)
    assert "MDE (80%)" in page


def test_status_and_deviations_pages_show_checks_and_training(smoke_book):
    html_dir = smoke_book / "book" / "_build" / "html"
    status_page = (html_dir / "chapters" / "99_status.html").read_text()
    deviations = (html_dir / "deviations.html").read_text()
    assert "paper steps" in deviations and "LoRA rank" in deviations
    assert "threshold" in status_page and "passed" in status_page
