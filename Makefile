# miniai's commands. Each creates .venv (and installs miniai into it) when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch: an unpinned `torch` would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.miniai-installed

.PHONY: test test-fast demo data docs bench bench-peers readme export clean-venv

$(STAMP): settings.ini setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q '$(TORCH)'
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# The data step: installs the Debian packages dataset-fashion-mnist and fortunes when they are missing and apt is usable
# (root or passwordless sudo); otherwise changes nothing and says what to run, and the loaders say how to get the data.
# For `make test` it installs chromium too when no Chromium is found: the docs tests look at the pages in it.
data:
	@tools/get_data.sh $(DATA_ARGS)

# Every test: the lessons run as notebooks in small mode, the docs built and browsed, the multi-process tests (slow).
test: DATA_ARGS = --browser
test: data $(STAMP)
	MINIAI_SMALL=1 $(PY) -m pytest tests

# The everyday tier: everything but the tests marked slow (pytest.ini), in under two minutes on two cores.
test-fast: data $(STAMP)
	MINIAI_SMALL=1 $(PY) -m pytest -m 'not slow' tests

export: $(STAMP)
	$(VENV)/bin/nbdev_export && $(VENV)/bin/nbdev_clean && $(PY) tools/make_readme.py

readme: $(STAMP)
	$(PY) tools/make_readme.py

# Train the lesson CNN with the Learner (full data, 5 epochs); plots go to out/. ARGS passes options through,
# e.g. `make demo ARGS="--small --epochs 2"`. `data` installs the Debian package when it can; then Fashion-MNIST is found or
# downloaded, or the error says how to get it.
# OMP_WAIT_POLICY=PASSIVE: torch's threads sleep rather than spin while they wait for each other; when other
# programs busy the cores, spinning made training several times slower here.
demo: data $(STAMP)
	@$(PY) -c $$'import sys\nfrom miniai.data import find_fmnist, DataNotFoundError\ntry: print("Fashion-MNIST:", find_fmnist())\nexcept DataNotFoundError as e: sys.exit(str(e))'
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m miniai.cli --out out $(ARGS)

# The docs site, offline: nbdev processes the notebooks, Sphinx + myst-nb + furo render them (see tools/build_docs.py).
docs: $(STAMP)
	$(PY) tools/build_docs.py

# Benchmarks (bench/README.md): a plain PyTorch loop against the miniai Learner, in interleaved rounds of fresh
# processes on full Fashion-MNIST; results go to bench/results/*.jsonl and the table to bench/RESULTS.md.
# `make bench QUICK=1`: every runner once on the small subset, to check that it runs (about 30 s).
# ROUNDS=n rounds per model (default 5); BENCH_LOCK=file holds an flock on that file during each round.
# The full run takes 25-40 minutes on a 2-core CPU: 1-epoch rounds of the small CNN (with the fastai and Lightning
# peers when `make bench-peers` has made their venvs) and of the ResNet, then one 5-epoch ResNet run per runner.
ROUNDS ?= 5
comma := ,
PEER_RUNNERS := $(subst $() ,,$(foreach p,fastai lightning,$(if $(wildcard bench/_venvs/$(p)/bin/python),$(comma)$(p))))
bench: $(STAMP)
ifdef QUICK
	$(PY) bench/bench.py quick
else
	$(PY) bench/bench.py run --model cnn --runners raw,miniai,miniai-hf$(PEER_RUNNERS) --rounds $(ROUNDS)
	$(PY) bench/bench.py run --model resnet --rounds $(ROUNDS)
	$(PY) bench/bench.py run --model resnet --epochs 5 --rounds 1 --runners raw,miniai
	$(PY) bench/bench.py report
endif

# The optional peer runners (fastai's fit_one_cycle, Lightning's Trainer): one venv each under bench/_venvs/, torch
# pinned to $(TORCH) first (pip, network). Then `$(PY) bench/bench.py run --runners raw,miniai,fastai,lightning`.
bench-peers: $(STAMP)
	TORCH='$(TORCH)' $(PY) bench/bench.py setup-peers

clean-venv:
	rm -rf $(VENV)
