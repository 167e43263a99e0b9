# make run  - set up .venv, create/upgrade the SQLite database, load the banks, serve
# make test - set up .venv with the test tools and run the whole suite
# make security - bandit, then sqlmap and wapiti against the app on loopback
# make bench - the benchmarks in bench/ (wrk, PostgreSQL and Redis; see bench/README.md)
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app quiz

.PHONY: run test lint format security bench check-banks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-app: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-app

run: $(VENV)/.installed-app
	$(FLASK) db upgrade
	$(FLASK) banks load
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check quiz tests bench
	$(BIN)/ruff format --check quiz tests bench

format: $(VENV)/.installed-test
	$(BIN)/ruff format quiz tests bench
	$(BIN)/ruff check --fix quiz tests bench

# bandit over the code, then sqlmap and wapiti (Debian packages) against the app on loopback
security: $(VENV)/.installed-test
	$(BIN)/bandit -q -r quiz -x quiz/migrations
	$(BIN)/python .ci/security-scan

bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
	$(BIN)/python -m bench.pages --db both
	$(BIN)/python -m bench.layers --db both
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.export --db both
	$(BIN)/python -m bench.load --db both

check-banks: $(VENV)/.installed-app
	$(FLASK) banks check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage htmlcov
