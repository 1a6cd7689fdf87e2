# Sourced by setup.sh and test.sh: create .venv if needed and install tinyfer with the
# given extras; re-installs only when pyproject.toml or the extras changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="$1"
py=""
for cand in python3.11 python3.12 python3.10 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    py="$cand"; break
  fi
done
[ -n "$py" ] || { echo "error: tinyfer needs Python 3.10 or newer (3.11 recommended)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.tinyfer-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
# The stamp lists every extras set installed so far; a set already present needs nothing.
if ! grep -qxF "$want" "$stamp" 2>/dev/null; then
  echo "installing tinyfer[$extras] into .venv ..."
  .venv/bin/python -m pip install --quiet --upgrade "pip>=24"
  # One line per package as pip collects it, and its summary: progress, not pip's whole log.
  .venv/bin/python -m pip install -e ".[$extras]" \
    | { grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed)' || true; } \
    | cut -c1-100
  echo "$want" >> "$stamp"
fi
