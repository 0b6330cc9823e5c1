# The two commands: `make demo` runs the product, `make test` runs the whole test suite.
# Both create or update the virtualenv in .venv from the pinned requirement files.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Tests never share the demo's embedded broker folder.
export CELERY_BROKER_DIR ?= $(CURDIR)/.demo/test-broker

.PHONY: demo test test-fast lint bench-sandbox bench-mail bench-ingest bench-pages bench-scale bench-follow bench-monthend bench-search bench-calendar chaos clean

$(BIN)/python:
	@echo "Creating the virtualenv in $(VENV)…"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	@echo "Installing requirements.txt into $(VENV) (a minute or two the first time)…"
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	@echo "Installing requirements-dev.txt into $(VENV)…"
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

demo: $(VENV)/.runtime-installed
	@unset CELERY_BROKER_DIR; $(BIN)/python manage.py rundemo

test: $(VENV)/.dev-installed
	# No persistent connections in tests: the live server's would keep the test database open.
	CONN_MAX_AGE=0 $(BIN)/pytest $(PYTEST_ARGS)

# The quick lane for local work: everything but the browser, worker, live-server and 25 MB tests.
test-fast: $(VENV)/.dev-installed
	CONN_MAX_AGE=0 $(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

# The environment of a benchmark on PostgreSQL and Redis (as .ci/run starts them): a database of
# its own ($(1), 'bench' in the name, created when missing) and Redis databases no other worker
# reads ($(2) for the cache, $(3) for the broker). Each can be overridden from the environment.
bench_env = DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$(1)} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/$(2)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/$(3)}
# Production settings on loopback, for the benchmarks that time pages ($(1) names the secret key).
bench_production = DEBUG=false SECRET_KEY=$(1)-only-not-a-secret ALLOWED_HOSTS=127.0.0.1,localhost,testserver \
	TOKEN_ENCRYPTION_KEYS=ZGV2LW9ubHktdG9rZW4ta2V5LW5vdC1mb3ItcHJvZCE= SECURE_SSL_REDIRECT=false \
	SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false SECURE_HSTS_SECONDS=0 LOG_LEVEL=WARNING

bench-sandbox: $(VENV)/.runtime-installed
	$(BIN)/python -m sandbox.bench

# Mail capture end to end with two real workers, on PostgreSQL and Redis (as .ci/run starts them):
# a database of its own ('bench' in the name, created when missing) and a Redis database no
# other worker reads. Either can be overridden from the environment (README, "Benchmarks").
bench-mail: $(VENV)/.runtime-installed
	$(call bench_env,aspire_bench,0,2) \
	$(BIN)/python manage.py bench_mail $(BENCH_ARGS)

# N connections (10,000 unless BENCH_ARGS="--connections N"), all due: dispatched, then swept by a
# 2-core worker host (2 workers x 16 threads) behind 150 ms of provider latency (docs/scale.md),
# with psycopg's pool as compose's workers run (DATABASE_POOL=false measures without it).
# A database and Redis databases of its own; each can be overridden from the environment.
bench-scale: $(VENV)/.runtime-installed
	DATABASE_POOL=$${DATABASE_POOL:-true} $(call bench_env,aspire_bench_scale,8,9) \
	$(BIN)/python manage.py bench_scale $(BENCH_ARGS)

# Month-end: one company sends 10,000 messages (BENCH_ARGS="--sends N" for fewer) while another
# company's mailboxes capture through push; the small company's capture latency at rest and during
# the storm, the send throughput and the throttled sends. A database and Redis databases of its own.
bench-monthend: $(VENV)/.runtime-installed
	$(call bench_env,aspire_bench_monthend,12,13) \
	$(BIN)/python manage.py bench_monthend $(BENCH_ARGS)

# Following conversations: follow-capture latency with push (a web app, a worker), and the requests
# of an idle run; on PostgreSQL and Redis, like bench-mail.
bench-follow: $(VENV)/.runtime-installed
	$(call bench_env,aspire_bench,0,2) \
	$(BIN)/python manage.py bench_follow $(BENCH_ARGS)

# Ingest side by side with django-mailbox (installed by the command in a throwaway virtualenv),
# on PostgreSQL: a database of its own ('bench' in the name, created when missing).
bench-ingest: $(VENV)/.runtime-installed
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/aspire_bench} \
	$(BIN)/python manage.py bench_ingest $(BENCH_ARGS)

# Capture and sending with real workers killed at random under provider faults; prints what was
# lost, doubled, sent twice or stuck (all must be 0). A database and a Redis database of its own.
chaos: $(VENV)/.runtime-installed
	$(call bench_env,aspire_bench_chaos,0,3) \
	$(BIN)/python manage.py chaos $(BENCH_ARGS)

# Every page at two company sizes, then a load run (Locust against gunicorn, both on loopback).
# Production settings, a scratch database of its own (generated once, then reused) and Redis
# databases no one else uses; each can be overridden from the environment (README, "Benchmarks").
bench-pages: $(VENV)/.dev-installed
	$(call bench_env,aspire_bench_pages,5,6) \
	$(call bench_production,bench-pages) \
	$(BIN)/python manage.py bench_pages $(BENCH_ARGS)

# Find email over 1,000,000 email activities (and an eighth of that): queries and p95 per search.
# A PostgreSQL database of its own ('bench' in the name; generated once, then reused).
bench-search: $(VENV)/.runtime-installed
	$(call bench_env,aspire_bench_search,5,6) \
	$(call bench_production,bench-search) \
	$(BIN)/python manage.py bench_search $(BENCH_ARGS)

# The calendar: the week view, the team view and Find a time at 1,000,000 appointments, and sync
# throughput against a sandbox. Production settings, a PostgreSQL database of its own (the team
# companies generated once, then reused: --keep-team) and Redis databases no one else uses; each
# can be overridden from the environment. BENCH_ARGS="--skip-week --skip-sandbox" times the team alone.
bench-calendar: $(VENV)/.runtime-installed
	$(call bench_env,aspire_bench_calendar,10,11) $(call bench_production,bench-calendar) \
	$(BIN)/python manage.py bench_calendar --keep-team $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .sandbox staticfiles
