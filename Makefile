# The two commands: `make run` starts the service, `make test` runs the tests. Both set up what is missing.
.PHONY: run test bootstrap setup lint bench

VENV := .venv/bin

bootstrap:
	@bash scripts/bootstrap.sh

setup: bootstrap
	@$(VENV)/referral-service setup

run: setup
	@$(VENV)/referral-service serve

test: setup
	@$(VENV)/pytest $(PYTEST_ARGS)

lint: bootstrap
	@$(VENV)/ruff check src tests bench
