# The two commands a new user needs (see README): `make up` and `make test`.
# Both set everything up first: a virtualenv with the project, configurable-http-proxy from npm,
# and (for the browser tests) Debian's chromium. Set-up steps are skipped when already done.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The broker and every user's notebook server run as unprivileged accounts (README, "Where the
# room runs"), so the venv must be built on an interpreter they can run: not one under /root
# (mode 0700, e.g. pyenv's). The first Python 3.11+ of this list is used.
BASE_PYTHON ?= $(shell for p in /usr/bin/python3 /usr/local/bin/python3 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)

.PHONY: setup venv-runnable postgresql java up test bench clean

$(STAMP): pyproject.toml
	@test -n "$(BASE_PYTHON)" || { echo "no Python 3.11+ found: apt-get install python3 python3-venv"; exit 1; }
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

node_modules/.bin/configurable-http-proxy: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

/usr/bin/chromium:
	@if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium missing: run 'sudo apt-get install chromium' for the browser tests"; fi

# As root: check that an unprivileged account runs the same interpreter as root from the venv
# and can import the project; a venv built earlier on an interpreter under /root is re-pointed at BASE_PYTHON (same
# minor version, same site-packages). A checkout in a directory others cannot traverse is reported
# (not fatal: everything but `dataroom up` and the hub tests works, and those say why they cannot).
venv-runnable: $(STAMP)
	@if [ "$$(id -u)" = "0" ]; then \
	  as_nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"; \
	  which_python="import sys; print(sys.version, sys.base_prefix)"; \
	  if [ "$$($$as_nobody $(PY) -c "$$which_python" 2>/dev/null)" != "$$($(PY) -c "$$which_python")" ]; then \
	    if [ "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" = "$$($(BASE_PYTHON) -c 'import sys; print(sys.version_info[:2])')" ]; then \
	      echo "re-pointing $(VENV) at $(BASE_PYTHON): unprivileged accounts cannot reach $$(readlink -f $(PY))"; \
	      $(BASE_PYTHON) -m venv --upgrade --without-pip $(VENV) && ln -sfn "$$(command -v $(BASE_PYTHON))" $(VENV)/bin/python3.tmp \
	        && mv -T $(VENV)/bin/python3.tmp $(VENV)/bin/python3; \
	    else echo "WARNING: $(VENV) is built on $$(readlink -f $(PY)), which unprivileged accounts cannot run: make clean setup"; fi; \
	  fi; \
	  $$as_nobody $(PY) -c 'import dataroom, jupyterhub' 2>/dev/null || { \
	    echo "WARNING: unprivileged accounts cannot run $(PY) or import the project from $(CURDIR),"; \
	    echo "  so dataroom up (and the hub tests) cannot start the broker or any user's server:"; \
	    echo "  every directory above the checkout must be traversable by others (chmod o+x), or move the checkout"; }; \
	fi

# The registry tests run a real PostgreSQL server (tests/support/postgres.py): Debian's server binaries.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL missing: run 'sudo apt-get install postgresql' for the registry tests"; fi

# The Spark engine's local server and tests (tests/spark) run pyspark's JVM: a Java 17 runtime from Debian.
java:
	@if java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then :; \
	elif [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "Java missing: run 'sudo apt-get install openjdk-17-jre-headless' for the Spark engine and its tests"; fi

setup: venv-runnable node_modules/.bin/configurable-http-proxy /usr/bin/chromium postgresql java

up: setup
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(VENV)/bin/dataroom up

test: setup
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(VENV)/bin/pytest -q

bench: setup
	$(PY) benchmarks/bench_query.py
	$(PY) benchmarks/bench_tpch.py
	PATH=$(CURDIR)/node_modules/.bin:$$PATH $(PY) benchmarks/bench_broker.py

clean:
	rm -rf $(VENV) node_modules
