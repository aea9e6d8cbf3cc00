# The two commands a new user types are `make run` and `make test`; both build .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	# The EXIficient codec inside the iso15118 wheel is the oracle of the EXI differential tests; its own
	# pins (pydantic 1, an old cryptography) would clash with ours, and the tests need only the jar.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps iso15118==0.31.2
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m cli.demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/issuance.py
	$(BIN)/python bench/crl.py
