# `make demo` and `make test` do all the set-up on a fresh machine (Python 3.11+, Node, a C compiler).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: setup demo test services stop-services bench clean

$(VENV)/.installed: requirements.txt requirements-test.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-test.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Idempotent: a second run installs nothing, applies no migration and copies no file.
setup: $(VENV)/.installed node_modules/.installed
	$(BIN)/python scripts/services.py ensure
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0

demo: setup
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py load_sample
	@echo ""
	@echo "  coigp-web is starting on http://127.0.0.1:$(PORT)/ (log in with the admin account above)"
	@echo "  Open the 'COIG-P sample' dataset, or upload a file on a dataset page. Ctrl-C stops everything."
	@echo ""
	$(BIN)/python scripts/demo.py --port $(PORT)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/ingest.py

stop-services:
	$(BIN)/python scripts/services.py stop

clean: stop-services
	rm -rf $(VENV) node_modules var staticfiles
