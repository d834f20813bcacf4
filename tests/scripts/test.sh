#!/usr/bin/env bash
# The whole test run, from a fresh clone: for each leg, a virtualenv with the
# package and its test extras, then ruff, the pytest suite and Django's own
# dispatch/signals suites under signaltrace.
#
# Legs: the newest Python found with the newest Django it supports, and the oldest
# Python found (>= 3.10) with Django 4.2. On a machine with one Python both legs
# use it.
set -euo pipefail
cd "$(dirname "$0")/../.."

newest=$(tests/scripts/find-python.sh)
oldest=$(tests/scripts/find-python.sh --oldest)

run_leg() {
  local name=$1 python=$2 django=$3
  local venv=".venv-$name"
  echo "=== leg $name: $("$python" --version) with $django"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e ".[test,toolbar,otel]" "$django"
  "$venv/bin/python" -c "import django; print('Django', django.get_version())"
  "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider  # -rs: every skip says why
  "$venv/bin/python" tests/django_suite/run.py
}

tests/scripts/browser.sh  # chromium for tests/test_panel_browser.py; prints why if it cannot
run_leg newest "$newest" "Django>=4.2"
tests/scripts/demo-smoke.sh
tests/scripts/phoenix.sh .venv-newest/bin/python
"./.venv-newest/bin/ruff" check .
"./.venv-newest/bin/ruff" format --check .
"./.venv-newest/bin/mkdocs" build --strict --quiet  # the docs, with every link checked
run_leg django42 "$oldest" "Django>=4.2,<5.0"
echo "=== all legs passed"
