#!/usr/bin/env bash
# The whole test run, from a fresh clone: one leg per Django version the docs claim
# (docs/versions.md), each in a virtualenv of its own with the package (editable), its
# test, toolbar and otel extras and that Django, on a Python that Django supports:
#
#   leg       Django  Python  virtualenv      runs
#   django61  6.1     3.13    .venv-newest    pytest, lint-imports, Django's dispatch/signals/
#                                             transaction suites, the demo smoke test, the
#                                             package (build, twine check, the wheel in a clean
#                                             venv), Phoenix, ruff, mkdocs
#   django60  6.0     3.12    .venv-django60  pytest, Django's dispatch/signals/transaction suites
#   django52  5.2     3.11    .venv-django52  pytest, Django's dispatch/signals/transaction suites
#   django42  4.2     3.10    .venv-django42  pytest, Django's dispatch/signals/transaction suites
#
# Where a leg's Python is not found (PATH, then pyenv), it takes the next one its Django
# supports (see leg_config). The main leg runs in the foreground; the three short legs
# run one after another in the background meanwhile (2 cores: the main leg keeps about
# one busy) and their output follows the main leg's (kept in .cache/legs/LEG.log). All
# legs share pip's cache. Where PostgreSQL is installed, tests/scripts/postgres.sh starts it
# and the tests and Django's transaction suites run on it too. A failing step stops nothing:
# the last lines give each leg's Django, Python and result, and the command exits non-zero
# if any leg failed.
#
# Usage: tests/scripts/test.sh           every leg (what `make test` runs)
#        tests/scripts/test.sh LEG...    only these short legs, in the foreground
set -uo pipefail
cd "$(dirname "$0")/../.."

LEGS_DIR=.cache/legs
REQUIREMENTS=$LEGS_DIR/requirements.txt
# `pip install -e .` rewrites signaltrace.egg-info in this folder: one at a time.
INSTALL_LOCK=$LEGS_DIR/install.lock
MAIN_LEG=django61
SHORT_LEGS="django60 django52 django42"

leg_config() {  # leg_config LEG: sets django (requirement), pythons (first choice first), venv
  case $1 in
    django61) django="Django>=6.1,<6.2" pythons="3.13 3.12 3.14" venv=.venv-newest ;;
    django60) django="Django>=6.0,<6.1" pythons="3.12 3.13 3.14" venv=.venv-django60 ;;
    django52) django="Django>=5.2,<5.3" pythons="3.11 3.12 3.13 3.10" venv=.venv-django52 ;;
    django42) django="Django>=4.2,<5.0" pythons="3.10 3.11 3.12" venv=.venv-django42 ;;
    *) echo "unknown leg $1 (legs: $MAIN_LEG $SHORT_LEGS)" >&2; return 1 ;;
  esac
}

find_python() {  # find_python X.Y...: the first of these found on PATH or under pyenv
  local pyenv_root version candidate
  pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for version in "$@"; do
    if command -v "python$version" >/dev/null 2>&1 && "python$version" -c "" >/dev/null 2>&1; then
      command -v "python$version"; return 0
    fi
    for candidate in "$pyenv_root"/versions/"$version".*/bin/python"$version"; do
      if [ -x "$candidate" ] && "$candidate" -c "" >/dev/null 2>&1; then echo "$candidate"; return 0; fi
    done
  done
  return 1
}

python_version() { "$1" -c 'import platform; print(platform.python_version())' 2>/dev/null; }

locked() {  # locked COMMAND...: run it holding the install lock (where flock exists)
  if command -v flock >/dev/null 2>&1; then flock "$INSTALL_LOCK" "$@"; else "$@"; fi
}

write_requirements() {  # signaltrace's requirements with its test, toolbar and otel extras
  local python
  python=$(find_python 3.14 3.13 3.12 3.11) || { echo "no Python >= 3.11 to read pyproject.toml" >&2; return 1; }
  mkdir -p "$LEGS_DIR"
  "$python" - >"$REQUIREMENTS" <<'PY'
import tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
extras = project["optional-dependencies"]
print("\n".join(project["dependencies"] + extras["test"] + extras["toolbar"] + extras["otel"]))
PY
}

# The leg being run: its name, failed steps and start time.
leg="" failed=() started=0

step() {  # step NAME COMMAND...: run one check, timed; a failure is noted and the leg goes on
  local name=$1 start=$SECONDS
  shift
  if "$@"; then
    echo "--- leg $leg: $name passed ($((SECONDS - start)) s)"
    return 0
  fi
  echo "!!! leg $leg: $name FAILED ($((SECONDS - start)) s)"
  failed+=("$name")
  return 1
}

install_leg() {  # --no-compile: Python compiles what the tests import, not all of Django and Faker
  "$venv/bin/python" -m pip install --quiet --upgrade pip &&
    "$venv/bin/python" -m pip install --quiet --no-compile -r "$REQUIREMENTS" "$django" &&
    locked "$venv/bin/python" -m pip install --quiet --no-deps -e .
}

setup_leg() {  # the leg's virtualenv, on its Python, with everything installed
  local python
  leg_config "$leg" || { failed+=("unknown leg"); return 1; }
  if ! python=$(find_python $pythons); then
    echo "!!! leg $leg: no Python $pythons found"
    failed+=("no Python $pythons")
    return 1
  fi
  echo "=== leg $leg: Python $(python_version "$python") with $django in $venv"
  if [ -x "$venv/bin/python" ] && [ "$(python_version "$venv/bin/python")" != "$(python_version "$python")" ]; then
    rm -rf "$venv"  # left from another Python
  fi
  if [ ! -x "$venv/bin/python" ]; then
    step venv "$python" -m venv "$venv" || return 1
  fi
  step install install_leg || return 1
  "$venv/bin/python" -c "import django; print('Django', django.get_version())"
}

finish_leg() {  # LEGS_DIR/LEG.result: leg, Django, Python, seconds and result, tab-separated
  local django_version python result venv_python=${venv:-.venv-none}/bin/python
  django_version=$("$venv_python" -c "import django; print(django.get_version())" 2>/dev/null) ||
    django_version="?"
  python=$(python_version "$venv_python") || python="?"
  if [ ${#failed[@]} -eq 0 ]; then result=pass; else result="FAIL (${failed[*]})"; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$leg" "$django_version" "$python" "$((SECONDS - started))" "$result" \
    >"$LEGS_DIR/$leg.result"
  echo "=== leg $leg: $result"
}

run_short_leg() {  # run_short_leg LEG: pytest and Django's dispatch/signals/transaction suites
  leg=$1 failed=() started=$SECONDS venv=""
  if setup_leg; then
    step pytest "$venv/bin/python" -m pytest -rfEs -p no:cacheprovider  # -rfEs: failures, errors, skips with why
    step django-suites "$venv/bin/python" tests/django_suite/run.py
  fi
  finish_leg
}

run_main_leg() {  # the newest Django on the newest Python, with every other check
  leg=$MAIN_LEG failed=() started=$SECONDS venv=""
  if setup_leg; then
    step pytest "$venv/bin/python" -m pytest -rfEs -p no:cacheprovider  # -rfEs: failures, errors, skips with why
    step lint-imports "$venv/bin/lint-imports"  # the layers in pyproject.toml [tool.importlinter]
    step django-suites "$venv/bin/python" tests/django_suite/run.py
    step demo-smoke locked tests/scripts/demo-smoke.sh  # `make demo` installs -e . too
    # python -m build writes signaltrace.egg-info here too: under the install lock.
    step package locked tests/scripts/package.sh "$venv/bin/python"
    step phoenix tests/scripts/phoenix.sh "$venv/bin/python"
    step ruff "$venv/bin/ruff" check .
    step ruff-format "$venv/bin/ruff" format --check .
    step mkdocs "$venv/bin/mkdocs" build --strict --quiet  # the docs, with every link checked
  fi
  finish_leg
}

summary() {  # summary LEG...: one line per leg; fails if any leg did not pass
  local name django_version python seconds result status=0
  echo
  echo "=== summary ($((SECONDS / 60)) min $((SECONDS % 60)) s)"
  printf '%-9s %-8s %-8s %6s  %s\n' leg Django Python time result
  for name in "$@"; do
    if [ -f "$LEGS_DIR/$name.result" ]; then
      IFS=$'\t' read -r _ django_version python seconds result <"$LEGS_DIR/$name.result"
      seconds="${seconds}s"
    else
      django_version="?" python="?" seconds="?" result="FAIL (no result: see $LEGS_DIR/$name.log)"
    fi
    printf '%-9s %-8s %-8s %6s  %s\n' "$name" "$django_version" "$python" "$seconds" "$result"
    [ "$result" = pass ] || status=1
  done
  if [ "$status" -eq 0 ]; then echo "=== all legs passed"; else echo "=== some legs FAILED"; fi
  return "$status"
}

if [ "${1:-}" = "--background" ]; then  # (used below) the short legs, each into its log
  shift
  for name in "$@"; do run_short_leg "$name" >"$LEGS_DIR/$name.log" 2>&1; done
  exit 0
fi

mkdir -p "$LEGS_DIR"
# PostgreSQL for the tests' "postgres" database and Django's transaction suites on it (every
# leg, the background ones too); prints why if it cannot, and then those tests skip.
postgres=$(tests/scripts/postgres.sh)
if [ "$postgres" = SIGNALTRACE_TEST_POSTGRES=1 ]; then export SIGNALTRACE_TEST_POSTGRES=1; fi
if [ $# -gt 0 ]; then  # only the short legs named, in the foreground
  for name in "$@"; do rm -f "$LEGS_DIR/$name.result"; done
  write_requirements || exit 1
  for name in "$@"; do run_short_leg "$name"; done
  summary "$@"
  exit
fi

rm -f "$LEGS_DIR"/*.log "$LEGS_DIR"/*.result
write_requirements || exit 1
tests/scripts/browser.sh  # chromium for tests/test_panel_browser.py; prints why if it cannot
# setsid: the background legs are one process group, stopped with this script.
setsid tests/scripts/test.sh --background $SHORT_LEGS </dev/null &
background=$!
trap 'kill -- "-$background" 2>/dev/null' EXIT
echo "=== legs $SHORT_LEGS: running in the background; their output follows this leg's"
run_main_leg
echo "=== leg $MAIN_LEG done; waiting for the background legs"
wait "$background"
trap - EXIT
for name in $SHORT_LEGS; do
  echo
  echo "=== output of leg $name ($LEGS_DIR/$name.log)"
  cat "$LEGS_DIR/$name.log" 2>/dev/null
done
summary "$MAIN_LEG" $SHORT_LEGS
