# The two commands: `make run` starts the service, `make test` runs the tests. Both set up what is missing:
# `run` only what serving needs; `test` and `security` add the test tools (chromium, sqlmap, promtool, [test]).
.PHONY: run test bootstrap bootstrap-test setup lint bench security soak status

VENV := .venv/bin

bootstrap:
	@bash scripts/bootstrap.sh run

bootstrap-test:
	@bash scripts/bootstrap.sh test

setup: bootstrap
	@$(VENV)/referral-service setup

run: setup
	@$(VENV)/referral-service serve

status:
	@$(VENV)/referral-service status

test: bootstrap-test setup
	@$(VENV)/pytest $(PYTEST_ARGS)

bench: bootstrap
	@$(VENV)/python -c "import matplotlib" 2>/dev/null || $(VENV)/pip install -q -e '.[bench]'
	@$(VENV)/python bench/run.py $(BENCH_ARGS)

lint: bootstrap-test
	@$(VENV)/ruff check src tests bench scripts

security: bootstrap-test setup
	@$(VENV)/pytest -q tests/security
	@bash scripts/security.sh

soak: setup
	@$(VENV)/python scripts/soak.py --minutes $(or $(MINUTES),10)
