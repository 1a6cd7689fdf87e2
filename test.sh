#!/usr/bin/env bash
# Install what the tests need (into .venv) and run the linter and the tests.
#   ./test.sh           the fast tier (no trainings, exports or full-dataset passes)
#   ./test.sh --all     everything, the slow tier too (what CI runs)
# Other arguments go to pytest, e.g. ./test.sh -m slow or ./test.sh tests/test_splits.py
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--all" ]; then
  shift
  set -- -m "" "$@"
fi
source scripts/venv.sh train,serve,ray,test
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
exec .venv/bin/python -m pytest "$@"
