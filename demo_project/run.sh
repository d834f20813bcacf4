#!/usr/bin/env bash
# `make demo`: set up and run the demo site from a fresh clone.
#
# Creates a virtualenv (.venv-demo), installs signaltrace with the toolbar, otel and celery extras,
# migrates the SQLite database, seeds demo data and serves the site on
# http://127.0.0.1:8000/ (Ctrl-C stops it).
#
# Environment: DEMO_PORT (8000), DEMO_VENV (.venv-demo), DEMO_PYTHON (newest
# Python >= 3.10 found), DEMO_DATABASE (demo_project/db.sqlite3).
set -euo pipefail
cd "$(dirname "$0")/.."

port=${DEMO_PORT:-8000}
venv=${DEMO_VENV:-.venv-demo}
python=${DEMO_PYTHON:-$(tests/scripts/find-python.sh)}

if [ -z "$python" ] || ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1; then
  # A fresh Debian or Ubuntu machine may lack Python or its venv module.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "=== installing python3 and python3-venv with apt-get"
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    python=$(command -v python3)
  else
    echo "The demo needs Python >= 3.10 with its venv module (Debian/Ubuntu: apt-get install python3-venv)." >&2
    exit 1
  fi
fi

echo "=== demo: $("$python" --version) in $venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".[toolbar,otel,celery]" \
  opentelemetry-exporter-otlp-proto-http opentelemetry-instrumentation-django
"$venv/bin/python" demo_project/manage.py migrate --noinput
"$venv/bin/python" demo_project/manage.py seed_demo
echo "=== demo: http://127.0.0.1:$port/ (sign up, users, loop lab); Ctrl-C stops it"
exec "$venv/bin/python" demo_project/manage.py runserver "127.0.0.1:$port"
