#!/usr/bin/env bash
# Trash everything tinyfer generated in this checkout (runs, caches, prepared data, demo data,
# .venv) and start over with ./setup.sh. Only these fixed folders inside the repository are
# removed: never a dataset you pointed tinyfer at, never anything outside the repository.
set -euo pipefail
cd "$(dirname "$0")"
for generated in .venv runs prepared demo_data evaluations artifacts .pytest_cache .ruff_cache build src/tinyfer.egg-info; do
  if [ -e "$generated" ]; then
    echo "removing $generated"
    rm -rf -- "./$generated"
  fi
done
find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
exec ./setup.sh "$@"
