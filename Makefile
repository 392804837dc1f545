# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install locales bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/citybot serve

test: $(STAMP)
	$(BIN)/pytest -q

PY_SOURCES := bot channels city conversations forms_runtime notifier staff storage tests bench

lint: $(STAMP)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy bot channels city conversations forms_runtime notifier staff storage
	$(BIN)/lint-imports

# Re-extract every text the bot says (Python and form YAML, see babel.cfg) and merge it into the
# catalogs. Locations name the file only, so moving a line does not churn every catalog; new
# catalogs are created as needed; fuzzy guesses are never made (a wrong guess would ship).
locales: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k tr:2 -k N_ --add-location=file --sort-output \
		--project=citybot --version=0.1.0 --copyright-holder="the citybot authors" \
		-o forms_runtime/locales/citybot.pot .
	for l in en af zu xh; do \
		$(BIN)/pybabel -q update -i forms_runtime/locales/citybot.pot -d forms_runtime/locales -D citybot -l $$l \
			--init-missing --no-fuzzy-matching --ignore-obsolete || exit 1; \
	done

bench: $(STAMP)
	$(BIN)/python bench/forms_engine.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.sqlite3
