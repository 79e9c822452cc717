# Two entry points (see README): `make demo` and `make test`. Both create/refresh .venv.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch is pinned in the same pip call as everything else so nothing pulls a CUDA build.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check
export MUJOCO_GL ?= egl
export PYTHONHASHSEED ?= 0

.PHONY: install demo test test-all lint bench peers clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_INSTALL) "torch==2.13.0" -e ".[robot,llm,libero,train,dev]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	# The agents' BabyAI (minigrid, the `agents` extra) requires pygame-ce, which installs over gym-pusht's
	# pygame (same module name) and changes PushT's frames; minigrid runs on pygame, so it comes without deps.
	$(PIP_INSTALL) --no-deps "torch==2.13.0" "minigrid==3.2.0" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/reasonact demo

# The fast set plus one smoke test of each slow family; `make test-all` runs every test.
test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -m "not slow or smoke" --junitxml=.pytest-report.xml

test-all: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: install
	$(VENV)/bin/reasonact fast bench

# Side venvs for peers that cannot be dependencies (LeRobot); tests and benchmarks that need them skip without.
peers:
	scripts/peer_lerobot_data.sh
	bash ../shared/peers/lerobot_pi05/setup.sh .peer-venv/lerobot

clean:
	rm -rf $(VENV) .pytest_cache .pytest-report.xml
