# `make demo` and `make test` do all the set-up on a fresh machine (Python 3.11+, Node, a C compiler).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: setup demo test services stop-services bench clean messages

$(VENV)/.installed: requirements.txt requirements-test.txt requirements-hf.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-test.txt -r requirements-hf.txt -c constraints.txt
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
	@echo "  coigp-web is starting on http://127.0.0.1:$(PORT)/ (the login is repeated once it answers)"
	@echo ""
	$(BIN)/python scripts/demo.py --port $(PORT)

# Stops the embedded PostgreSQL and Redis again if this run started them (never the machine's own servers).
# PYTEST_WORKERS processes (pytest-xdist; each its own test database and Redis number): on 2 cores the
# whole suite takes 4:52 with 2 against 6:20 serially (BENCHMARKS.md); PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= 2
test: setup
	@status=0; $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS) || status=$$?; \
		$(BIN)/python scripts/services.py stop-started; exit $$status

# Every benchmark at full size, one after the other (about 10 minutes on 2 cores); figures in BENCHMARKS.md.
bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/score.py --requests 20000 --concurrency 64
	$(BIN)/python bench/score.py --requests 20000 --concurrency 256
	$(BIN)/python bench/pairs.py
	$(BIN)/python bench/reward.py
	$(BIN)/python bench/export.py

# UI translations: collect the strings marked in code and templates into locale/*/LC_MESSAGES/django.po
# (new ones come in untranslated), then compile the django.mo that is committed beside it, so a machine
# without GNU gettext still serves them. Needs gettext (apt-get install gettext); neither command
# touches the database or Redis, so placeholders stand in for their settings when they are unset.
LANGS ?= zh_Hans
MESSAGES_IGNORE := --ignore '.venv/*' --ignore 'node_modules/*' --ignore 'staticfiles/*' --ignore 'bench/*' \
	--ignore 'tests/*' --ignore 'var/*'
MESSAGES_ENV := DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-messages}" \
	DATABASE_URL="$${DATABASE_URL:-postgresql://x@localhost/x}" REDIS_URL="$${REDIS_URL:-redis://localhost:6379/0}"

messages: $(VENV)/.installed
	@command -v xgettext >/dev/null && command -v msgfmt >/dev/null \
		|| { echo "make messages needs GNU gettext (apt-get install gettext)" >&2; exit 1; }
	$(MESSAGES_ENV) $(BIN)/python manage.py makemessages $(addprefix -l ,$(LANGS)) $(MESSAGES_IGNORE)
	$(MESSAGES_ENV) $(BIN)/python manage.py compilemessages $(addprefix -l ,$(LANGS)) $(MESSAGES_IGNORE)

stop-services:
	$(BIN)/python scripts/services.py stop

clean: stop-services
	rm -rf $(VENV) node_modules var staticfiles
