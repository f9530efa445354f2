# Two commands set everything up on a fresh machine:  make demo   |   make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The local torch 2.13.0 CPU wheel (pip finds it through the machine's find-links); never an unpinned torch,
# which would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
SOURCES := pyproject.toml setup.py $(wildcard jit/csrc/*.c jit/csrc/*.h inductor/runtime/csrc/*.c)

.PHONY: demo test test-main test-other-pythons bench fuzz clean

$(VENV)/.ready: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

demo: $(VENV)/.ready
	$(PY) benchmarks/demo.py

test: test-main test-other-pythons

test-main: $(VENV)/.ready
	$(PY) -m pytest -q tests

# The torch-free hook tests under every other CPython this machine has (3.12, 3.13 via pyenv).
test-other-pythons:
	bash tests/other_pythons.sh

# The program generator (tests/fuzz): e.g. make fuzz FUZZ_ARGS="--backend numpy --seeds 0:5000 --minimize"
FUZZ_ARGS ?= --backend eager,default,numpy --seeds 0:1000 --minimize
fuzz: $(VENV)/.ready
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

bench: $(VENV)/.ready
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) .venv3* build *.egg-info jit/*.so inductor/runtime/*.so
