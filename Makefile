# The README's two commands: `make demo` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/panorama demo

test: $(VENV)/.installed
	bash .ci/services
	bash .ci/browser
	$(BIN)/ruff check connectors gateway tests examples
	$(BIN)/mypy
	$(BIN)/pytest -q

schema: $(VENV)/.installed
	$(BIN)/panorama schema > schema.graphql

clean:
	rm -rf $(VENV) panorama-demo .pytest_cache
