# The two commands a new user types are `make run` and `make test`; both build .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format bench softhsm

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

# The PKCS#11 tests run against SoftHSM2 (Debian package softhsm2); CI runs as root, a developer may need sudo.
softhsm:
	@command -v softhsm2-util >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q softhsm2 || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q softhsm2; } \
	  || echo "softhsm2 could not be installed: the PKCS#11 tests will be skipped"; }

# One worker per core; a test file stays on one worker, so its module fixtures are built once.
test: $(STAMP) softhsm
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/issuance.py
	$(BIN)/python bench/crl.py
	$(BIN)/python bench/hsm.py
