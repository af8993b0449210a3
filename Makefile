# The two commands the README starts with:
#   make demo   set up a fresh machine and run the whole job on its embedded defaults
#   make test   set up, then run the linters and the whole test suite
.PHONY: setup demo test lint

setup:
	bash scripts/setup

demo: setup
	.venv/bin/dreamcrawl demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: setup lint
	bash scripts/test-deps
	.venv/bin/python -m pytest $(PYTEST_ARGS)
