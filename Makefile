# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install lock locales bench chaos clean

# The versions CI tested (requirements.lock), pip's own among them: a fresh machine installs the
# same. The lock constrains only what pyproject.toml asks for, so a platform without a locked
# package (uvloop on Windows) installs without it.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements.lock --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/citybot serve

# The route fuzzer's 2,000 cases per route (tests/web/test_no_server_errors.py on SQLite, marked
# fuzz) run in a second pytest beside the rest of the suite: they share nothing with the other
# tests, and the suite alone leaves the second core mostly idle. Their output follows the suite's.
FUZZ_LOG := .pytest-fuzz.log
test: $(STAMP)
	@$(BIN)/pytest -q -p no:cacheprovider -m fuzz > $(FUZZ_LOG) 2>&1 & fuzz=$$!; \
	$(BIN)/pytest -q -m "not fuzz"; suite=$$?; \
	wait $$fuzz; fuzzed=$$?; \
	echo "--- the route fuzzer (pytest -m fuzz, beside the suite) ---"; \
	if [ $$fuzzed -eq 0 ]; then tail -n 5 $(FUZZ_LOG); else cat $(FUZZ_LOG); fi; \
	[ $$suite -eq 0 ] && [ $$fuzzed -eq 0 ]

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
	# The staff console's words: a domain of their own, English only for now (no catalog: the
	# source texts are shown); a translation is a .po beside the template.
	$(BIN)/pybabel -q extract -F babel-staff.cfg -k console_text --add-location=file --sort-output \
		--project=citybot --version=0.1.0 --copyright-holder="the citybot authors" \
		-o bot/web/locales/citybot_staff.pot .
	# The public dashboard's words: a domain of their own, in the four languages.
	$(BIN)/pybabel -q extract -F babel-dashboard.cfg --add-location=file --sort-output \
		--project=citybot --version=0.1.0 --copyright-holder="the citybot authors" \
		-o bot/web/locales/citybot_dashboard.pot .
	for l in af zu xh; do \
		$(BIN)/pybabel -q update -i bot/web/locales/citybot_dashboard.pot -d bot/web/locales -D citybot_dashboard -l $$l \
			--init-missing --no-fuzzy-matching --ignore-obsolete || exit 1; \
	done

# After changing the dependencies in pyproject.toml: the newest versions it allows, installed in a
# scratch virtualenv and frozen (citybot itself and the build tools left out). Commit the result
# with the change, once the tests pass on it (`make install` then installs it here too).
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q '.[dev]'
	{ echo "# Made by \`make lock\` from pyproject.toml: the versions \`make install\` installs."; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude citybot --exclude setuptools --exclude wheel; \
	} > requirements.lock
	rm -rf $(LOCK_VENV) build

# The reliability suite's long runs (docs/reliability.md): 100,000 fuzz cases per route, 50 kill -9
# per process kind, the full 10,000 duplicates, 400 schemathesis cases per operation and mode, and
# the 10-minute soak at half capacity. Hours, not minutes; `make test` runs the bounded sizes.
chaos: $(STAMP)
	CITYBOT_CHAOS=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/reliability tests/web/test_no_server_errors.py

bench: $(STAMP)
	$(BIN)/python bench/forms_engine.py

clean:
	rm -rf $(VENV) $(LOCK_VENV) .mypy_cache .pytest_cache .ruff_cache *.sqlite3 $(FUZZ_LOG)
