# mintel: `make up` runs the main job on the simulator, `make test` runs the whole suite.
# Every target creates or updates .venv first; the install step is skipped when nothing changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mintel-installed
ARGS   ?=
# test processes (pytest-xdist): one per core by default; `make test JOBS=0` runs in this process only
JOBS   ?= auto

.PHONY: install up test bench clean-lake soak

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[notebooks,lab,dev,dask]'
	$(PY) -m mintel.analytics.warm  # compiles the numba kernels once, into their on-disk cache
	@touch $@

up: install
	$(VENV)/bin/mintel up $(ARGS)

test: install
	$(PY) -m pytest -n $(JOBS) --dist loadscope $(ARGS)

bench: install
	$(PY) -m bench $(ARGS)

clean-lake:
	rm -rf data/lake

# Long reliability runs (issue 8) that CI has no time for; each prints its figures and fails on a
# problem. The crash soak: 60+ SIGKILLs of real ingest/compaction processes (SOAK_CRASH_KILLS=N).
# The fault soak: 1500 cycles of mixed provider faults. The load soak: 5000 symbols every 5 s with
# reports and three dashboard kernels (SOAK_LOAD_MINUTES, default 10). The memory run: the ingest service
# over three simulated sessions at 5000 symbols, RSS flat after the second (MEM_SYMBOLS, MEM_CYCLES).
soak: install
	$(PY) -m bench.bench_crash
	$(PY) -m bench.bench_faults --cycles 1500
	$(PY) -m bench.bench_load
	$(PY) -m bench.bench_memory
