#!/usr/bin/env bash
# The release check: builds the sdist and the wheel (`python -m build`), checks both
# with `twine check --strict`, checks that the wheel holds every file of the package
# (modules, the panel's template and static files, py.typed), installs the wheel into
# a clean virtualenv and runs tests/scripts/package_smoke.py there, outside the
# checkout. Leaves nothing behind (all of it happens in a temporary directory).
#
# Usage: tests/scripts/package.sh PYTHON
#   PYTHON: an interpreter with `build` and `twine` (the test extra), e.g. .venv-newest/bin/python.
#   The clean virtualenv is made with the same Python.
set -euo pipefail
cd "$(dirname "$0")/../.."

python=$1
checkout=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "=== package: python -m build (log: $scratch/build.log while it runs)"
if ! "$python" -m build --outdir "$scratch/dist" . >"$scratch/build.log" 2>&1; then
  tail -n 40 "$scratch/build.log"
  echo "python -m build failed"
  exit 1
fi
ls "$scratch/dist"

echo "=== package: twine check --strict"
"$python" -m twine check --strict "$scratch"/dist/*

echo "=== package: the wheel holds every file of signaltrace/"
"$python" - "$scratch"/dist/*.whl <<'PY'
import sys
import zipfile
from pathlib import Path

in_wheel = set(zipfile.ZipFile(sys.argv[1]).namelist())
in_source = {
    path.as_posix()
    for path in Path("signaltrace").rglob("*")
    if path.is_file() and "__pycache__" not in path.parts
}
missing = sorted(in_source - in_wheel)
if missing:
    sys.exit(f"missing from the wheel: {missing}")
data = sorted(name for name in in_source if not name.endswith(".py"))
print(f"all {len(in_source)} files, with the package data {data}")
PY

echo "=== package: install the wheel into a clean virtualenv and run the smoke test"
"$python" -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$scratch"/dist/*.whl
cd "$scratch"  # -I and this directory: `import signaltrace` finds only the installed wheel
"$scratch/venv/bin/python" -I "$checkout/tests/scripts/package_smoke.py"
