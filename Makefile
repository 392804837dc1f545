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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot channels conversations forms_runtime notifier

# Re-extract every text the bot says (Python and form YAML) and merge it into the catalogs.
locales: $(STAMP)
	$(BIN)/pybabel extract -q -F babel.cfg -o locales/citybot.pot --no-location --sort-output .
	for l in af zu xh en; do $(BIN)/pybabel update -q -N -i locales/citybot.pot -d locales -D citybot -l $$l --no-fuzzy-matching; done

bench: $(STAMP)
	$(BIN)/python bench/forms_engine.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache *.sqlite3
