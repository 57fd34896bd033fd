# The two commands a newcomer needs: `make run` and `make test`. Both set up everything first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever a requirements file changes.
$(VENV)/.installed: $(BIN)/python requirements/base.txt requirements/dev.txt
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_setup
	rm -rf var/metrics && mkdir -p var/metrics
	@echo ""
	@echo "  API:       http://127.0.0.1:$(PORT)/api/rest_j/v1/  (log in: POST user/login)"
	@echo "  Admin:     http://127.0.0.1:$(PORT)/admin/  (hadoop / \$$DEMO_PASSWORD, default linkis-demo)"
	@echo "  API docs:  http://127.0.0.1:$(PORT)/api/docs/"
	@echo ""
	exec $(BIN)/honcho --no-prefix start -f Procfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Benchmarks against the physical limit of each job (docs/benchmarks.md): SIZE=tiny|small|large,
# BENCH="listing sweep" for some of them. Results in bench/results/.
SIZE ?= small
BENCH ?=
.PHONY: bench
bench: setup
	$(BIN)/python -m bench --size $(SIZE) $(BENCH)

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	bash tests/install_browser.sh
	@echo "== embedded leg: SQLite and the file-system broker"
	$(BIN)/python -m pytest --durations=15
	@echo "== production leg: PostgreSQL and Redis"
	bash tests/production_leg.sh $(BIN)/python -m pytest --durations=10 -p no:cacheprovider

clean:
	rm -rf $(VENV) var .pytest_cache
