# fieldsvc: `make run` serves a demo-filled instance; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint bench migration

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate
	$(BIN)/pybabel compile -f -d fieldsvc/translations >/dev/null 2>&1 || true

run: install
	$(FLASK) db upgrade
	$(FLASK) setup
	@echo ""
	@echo "fieldsvc is starting on http://$(HOST):$(PORT)  (Ctrl-C stops it)"
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 1 --threads 8 --access-logfile - wsgi:app

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check fieldsvc tests bench

bench: install
	$(BIN)/python -m bench.run_all

# Regenerate the initial migration from the models (allowed until the first production deploy).
migration: install
	rm -f migrations/versions/*.py
	tmp=$$(mktemp -d) && DATABASE_URL=sqlite:///$$tmp/m.sqlite3 $(FLASK) db migrate -m "initial schema" >/dev/null && rm -rf $$tmp
	@ls migrations/versions/
