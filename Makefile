# Two commands for a newcomer: `make run` and `make test`. Each creates the virtual
# environment when it is missing (or older than pyproject.toml, setup.py or the C source).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
CONFIG ?= examples/monitor.yaml

.PHONY: run test postgres browser lint format bench bench-service clean

$(STAMP): pyproject.toml setup.py monitor/match/_speedups.c
	@command -v cc >/dev/null || { echo "error: a C compiler is needed to build monitor/match/_speedups.c (Debian: apt-get install gcc)" >&2; exit 1; }
	@$(PYTHON) -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| { echo "error: the Python headers are needed to build monitor/match/_speedups.c (Debian: apt-get install python3-dev)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# What a user installs (no test or dev packages: selenium's trio, say, would otherwise be
# imported by httpcore and weigh in the footprint bench/service.py measures).
RUNTIME = .venv-runtime
$(RUNTIME)/.installed: pyproject.toml setup.py monitor/match/_speedups.c
	$(PYTHON) -m venv $(RUNTIME)
	$(RUNTIME)/bin/python -m pip install --quiet --upgrade pip
	$(RUNTIME)/bin/python -m pip install --quiet -e .
	touch $@

run: $(STAMP)
	$(BIN)/monitor run --config $(CONFIG)

# The suite runs against SQLite and PostgreSQL; scripts/ensure-postgres.sh starts
# (or installs, then starts) a local PostgreSQL when none answers on 127.0.0.1:5432.
# The dashboard's tests drive Debian's headless Chromium (scripts/ensure-browser.sh).
test: $(STAMP) postgres browser
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

postgres:
	@bash scripts/ensure-postgres.sh

browser:
	@bash scripts/ensure-browser.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/match.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/stories.py

# The running service's footprint, as installed (bench/service.py --help for its options).
bench-service: $(STAMP) $(RUNTIME)/.installed
	$(BIN)/python bench/service.py --python $(RUNTIME)/bin/python

clean:
	rm -rf $(VENV) $(RUNTIME) .pytest_cache .ruff_cache *.egg-info
