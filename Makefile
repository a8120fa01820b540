# The two commands: `make run` starts the service, `make test` runs the tests. Both set up what is missing.
.PHONY: run test bootstrap setup lint bench security soak

VENV := .venv/bin

bootstrap:
	@bash scripts/bootstrap.sh

setup: bootstrap
	@$(VENV)/referral-service setup

run: setup
	@$(VENV)/referral-service serve

test: setup
	@$(VENV)/pytest $(PYTEST_ARGS)

bench: bootstrap
	@$(VENV)/python -c "import matplotlib" 2>/dev/null || $(VENV)/pip install -q -e '.[bench]'
	@$(VENV)/python bench/run.py $(BENCH_ARGS)

lint: bootstrap
	@$(VENV)/ruff check src tests bench

security: setup
	@$(VENV)/pytest -q tests/security
	@bash scripts/security.sh

soak: setup
	@$(VENV)/python scripts/soak.py --minutes $(or $(MINUTES),10)
