# The two commands a new user needs (see README): `make up` and `make test`.
# Both set everything up first: a virtualenv with the project, configurable-http-proxy from npm,
# and (for the browser tests) Debian's chromium. Set-up steps are skipped when already done.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup up test bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

node_modules/.bin/configurable-http-proxy: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

/usr/bin/chromium:
	@if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium missing: run 'sudo apt-get install chromium' for the browser tests"; fi

setup: $(STAMP) node_modules/.bin/configurable-http-proxy /usr/bin/chromium

up: setup
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(VENV)/bin/dataroom up

test: setup
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(VENV)/bin/pytest -q

bench: setup
	$(PY) benchmarks/bench_query.py
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(PY) benchmarks/bench_broker.py

clean:
	rm -rf $(VENV) node_modules
