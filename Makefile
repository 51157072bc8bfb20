# fieldsvc: `make run` serves a demo-filled instance; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint bench bench-smoke migration translations

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

# Front-end libraries come from the npm registry at install time and are served by fieldsvc.
VENDOR := fieldsvc/web/static/vendor
$(VENDOR)/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/leaflet
	cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css \
		node_modules/leaflet/dist/images $(VENDOR)/leaflet/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.umd.min.js
	cp node_modules/axe-core/axe.min.js $(VENDOR)/axe.min.js
	cp node_modules/leaflet/LICENSE $(VENDOR)/LICENSE.leaflet
	cp node_modules/chart.js/LICENSE.md $(VENDOR)/LICENSE.chart.js
	cp node_modules/axe-core/LICENSE $(VENDOR)/LICENSE.axe-core
	touch $@

install: $(BIN)/activate $(VENDOR)/.stamp
	$(BIN)/pybabel -q compile -d fieldsvc/translations

# Join links and the printed addresses follow where `make run` serves (HOST=0.0.0.0: the LAN
# address, unless PUBLIC_BASE_URL says otherwise; see fieldsvc/config.py).
run: export GUNICORN_BIND = $(HOST):$(PORT)
run: install
	$(FLASK) db upgrade
	$(FLASK) setup
	@echo ""
	@echo "fieldsvc is starting on $(HOST):$(PORT)  (Ctrl-C stops it)"
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check fieldsvc tests bench

# Benchmarks need PostgreSQL: started and found the way .ci/run does.
BENCH_PG = if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then \
	  pg_ctlcluster --skip-systemctl-redirect "$$(ls /etc/postgresql)" main start || true; \
	  for _ in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done; fi; \
	user=postgres; psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1 || user=root; \
	export FIELDSVC_TEST_POSTGRES_URL=$${FIELDSVC_TEST_POSTGRES_URL:-postgresql://$$user@127.0.0.1:5432/postgres}

bench: install
	$(BENCH_PG); $(BIN)/python -m bench.run_all

bench-smoke: install
	$(BENCH_PG); BENCH_SMOKE=1 $(BIN)/python -m bench.run_all

# Regenerate the initial migration from the models (allowed until the first production deploy).
migration: install
	rm -f migrations/versions/*.py
	tmp=$$(mktemp -d) && DATABASE_URL=sqlite:///$$tmp/m.sqlite3 $(FLASK) db migrate -m "initial schema" >/dev/null && rm -rf $$tmp
	@ls migrations/versions/

# Re-extract every _() string (Python and Jinja, see babel.cfg) and merge it into fr, ar, en;
# then translate the new msgids (tests/phone/test_translations.py fails on any left empty or fuzzy).
# Nothing new to translate leaves every file as it was (no timestamp-only changes).
POT := fieldsvc/translations/messages.pot
translations: $(BIN)/activate
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--project fieldsvc -w 100 -o $(POT).new .
	if diff -q -I '^"POT-Creation-Date: ' $(POT).new $(POT) >/dev/null 2>&1; \
		then rm $(POT).new; else mv $(POT).new $(POT); fi
	$(BIN)/pybabel -q update -i $(POT) -d fieldsvc/translations \
		--no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date -w 100
