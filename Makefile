# The two commands of the README: `make run` (portal on the demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# wall-clock limit of `make test`'s pytest: SIGINT (pytest reports what ran), SIGKILL a minute later
TEST_BUDGET_S ?= 3300

.PHONY: run test lint demo validate schema clean

run:
	@scripts/bootstrap.sh
	@$(PY) -m ingestion_core demo
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test:
	@scripts/bootstrap.sh --test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	timeout -s INT -k 60 $(TEST_BUDGET_S) $(PY) -m pytest $(PYTEST_ARGS)

lint:
	@scripts/bootstrap.sh --test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

demo:
	@scripts/bootstrap.sh
	$(PY) -m ingestion_core demo

validate:
	$(PY) -m ingestion_core validate configs/

schema:
	$(PY) -m ingestion_core schema > configs/source.schema.json

clean:
	rm -rf .ingest runs demo/data .pytest_cache
