#!/usr/bin/env bash
# Build the C hook and run the torch-free hook tests under other CPython versions (no torch wheel exists for
# them here). Each gets its own venv with only setuptools, pytest and bytecode; framejit is installed without
# dependencies so nothing pulls torch. JIT_REQUIRE_OTHER_PYTHONS=1 (CI) turns a missing interpreter into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for version in 3.12.1 3.13.0; do
    python="${PYENV_ROOT:-$HOME/.pyenv}/versions/$version/bin/python"
    if [ ! -x "$python" ]; then
        if [ "${JIT_REQUIRE_OTHER_PYTHONS:-0}" = 1 ]; then
            echo "other_pythons: Python $version not found at $python" >&2; status=1
        else
            echo "other_pythons: Python $version not installed; its hook tests were not run"
        fi
        continue
    fi
    short=${version%.*}; venv=".venv${short/./}"
    if [ ! -x "$venv/bin/pytest" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check setuptools pytest
    fi
    # bytecode (pure Python) for the resume-code tests: how cells reach a resume function is version-specific
    "$venv/bin/python" -c "import bytecode" 2>/dev/null ||
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "bytecode==0.19.1"
    "$venv/bin/python" setup.py -q build_ext --inplace >/dev/null
    echo "== hook tests under Python $version"
    PYTHONPATH=. "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/hook || status=1
done
exit $status
