"""Sphinx extension: serve MathJax from the book itself, loaded once per page.

`make mathjax` unpacks the npm package mathjax@3 into book/_static/mathjax/ and
_config.yml points `mathjax_path` at its es5/tex-mml-chtml.js, so no page needs
the network. Jupyter Book 1.x, however, adds *every* .js and .css file under the
html_static_path folders to every page (jupyter_book/config.py); left alone, each
page would load all ~100 MathJax components as scripts. This drops the entries
under mathjax/ again; MathJax loads what it needs itself, from _static/mathjax/.

It also turns a missing MathJax copy into a warning, which `-W` makes fatal,
instead of a book that silently shows raw TeX.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
PREFIX = "mathjax/"


def _name(entry) -> str:
    return entry[0] if isinstance(entry, (tuple, list)) else str(entry)


def _drop_mathjax_assets(app, config) -> None:
    for option in ("html_js_files", "html_css_files"):
        entries = getattr(config, option, None) or []
        kept = [e for e in entries if not _name(e).replace("\\", "/").startswith(PREFIX)]
        setattr(config, option, kept)
    path = str(config.mathjax_path or "")
    if "://" in path:
        logger.warning("mathjax_path %r loads MathJax from the network", path)
        return
    found = any((Path(app.confdir) / static / path).is_file() for static in config.html_static_path)
    if not found:
        logger.warning("MathJax not found at _static/%s: run `make mathjax`", path)


def setup(app):
    app.connect("config-inited", _drop_mathjax_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
