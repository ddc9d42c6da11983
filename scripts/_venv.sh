# Sourced by the other scripts: a virtualenv in .venv with eventvault and its test extras.
# EVENTVAULT_VENV points elsewhere; the install is skipped when pyproject.toml has not changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EVENTVAULT_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.eventvault-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test,cli,postgres,bench]"
    touch "$STAMP"
fi
PY="$VENV/bin/python"
export PY
