# The two commands a new user runs: `make demo` and `make test`.
# Both build .venv and node_modules on first use and are safe to run again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: demo test bench lint setup clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? 1 : 0)' || (echo "Node 20+ is required" && false)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov (infra/ scan in the tests) has its own venv: it pins pycep-parser 0.5.1, the tests use 0.7.1.
$(CHECKOV): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	echo '*' > $(CHECKOV_VENV)/.gitignore
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# Debian's chromium renders the digest email and owner notices in tests, and its chromedriver drives the web pages
# through Selenium; as root or through sudo.
$(CHROMIUM) $(CHROMEDRIVER):
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		chromium-driver

demo: setup
	$(BIN)/wiaudit demo

test: $(CHECKOV) $(CHROMIUM) $(CHROMEDRIVER)
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m benchmarks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	test ! -x $(BIN)/wiaudit || $(BIN)/wiaudit store stop
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .wiaudit
