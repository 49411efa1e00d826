# The two commands: `make demo` and `make test`. Both build .venv from nothing on a machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned for development and CI: 2.13.0 is a CPU build that installs from local disk.
TORCH_PIN := torch==2.13.0

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[test]" "$(TORCH_PIN)"
	touch $@

venv: $(VENV)/.installed-test

# The main job: six activations x three seeds on scikit-learn's digits, learning rate tuned per activation
# (about a minute on two cores). Rerunning skips the finished runs kept in relulab-report/compare/runs.
demo: venv
	$(BIN)/relulab explain relu
	$(BIN)/relulab plot relu leaky_relu elu gelu silu --grad -o curves.png
	@echo "wrote curves.png"
	$(BIN)/relulab compare --out relulab-report/compare
	@echo "the report is relulab-report/compare/index.html (plots, results.json, results.csv next to it)"

# The explorer's end-to-end tests drive Debian's chromium (CI runs as root); installed only when missing.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

test: venv $(CHROMIUM)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
