# The two commands README.md gives: `make demo` and `make test`; `make check` is the
# inner loop once `make test` has run.
.PHONY: demo graph test check bench bench-production docs screenshot

demo:
	demo_project/run.sh

# Print the demo's signal map (docs/graph.md) with the demo's virtualenv, which has
# Django: `make graph`, `make graph ARGS="--exclude 'django.*'"`. If the virtualenv is
# missing (or lacks Django), it is made and filled the way demo_project/run.sh does (same DEMO_VENV and
# DEMO_PYTHON), so a later `make demo` reuses it.
DEMO_VENV ?= .venv-demo
graph:
	@if ! "$(DEMO_VENV)/bin/python" -c "import django, debug_toolbar, signaltrace" >/dev/null 2>&1; then \
	  python="$${DEMO_PYTHON:-$$(tests/scripts/find-python.sh)}"; \
	  if [ -z "$$python" ] || ! "$$python" -c "import venv, ensurepip" >/dev/null 2>&1; then \
	    echo "make graph needs Python >= 3.10 with its venv module (Debian/Ubuntu: apt-get install python3-venv), or run make demo first." >&2; \
	    exit 1; \
	  fi; \
	  echo "=== graph: making $(DEMO_VENV) with $$("$$python" --version) (as make demo does)" >&2; \
	  "$$python" -m venv "$(DEMO_VENV)" \
	  && "$(DEMO_VENV)/bin/python" -m pip install --quiet --upgrade pip \
	  && "$(DEMO_VENV)/bin/python" -m pip install --quiet -e ".[toolbar,otel,celery]" \
	    opentelemetry-exporter-otlp-proto-http opentelemetry-instrumentation-django >&2 \
	  || { echo "make graph: could not set up $(DEMO_VENV); see the pip output above." >&2; exit 1; }; \
	fi
	@"$(DEMO_VENV)/bin/python" demo_project/manage.py signaltrace graph $(ARGS)

test:
	tests/scripts/test.sh

# The quick inner loop (a minute or two): ruff, ruff format, the import contracts and
# pytest, with .venv-newest (Django 6.1), which `make test` makes and fills. Stops at the
# first failing check. The other Django legs, Django's own suites, the demo, the package
# and Phoenix run only in `make test`.
CHECK_VENV ?= .venv-newest
check:
	@if ! "$(CHECK_VENV)/bin/python" -c "import django, pytest, signaltrace" >/dev/null 2>&1 \
	    || [ ! -x "$(CHECK_VENV)/bin/ruff" ] || [ ! -x "$(CHECK_VENV)/bin/lint-imports" ]; then \
	  echo "make check runs in $(CHECK_VENV), which make test creates: run make test once first." >&2; \
	  exit 1; \
	fi
	$(CHECK_VENV)/bin/ruff check .
	$(CHECK_VENV)/bin/ruff format --check .
	$(CHECK_VENV)/bin/lint-imports
	$(CHECK_VENV)/bin/python -m pytest -q -rfEs -p no:cacheprovider

bench:
	.venv-newest/bin/python benchmarks/overhead.py

# Requests/s of the demo under gunicorn with spans off, on by default, and on for every
# signal (docs/performance.md). Makes .venv-bench on first use; about 4 minutes.
bench-production:
	python3 benchmarks/production.py

# Regenerate every screenshot in docs/img/ (needs chromium): the panel (docs/panel.md),
# the demo's sign-up and loop lab (docs/demo.md), one per tutorial pattern
# (docs/patterns.md) and the flame view in speedscope (docs/ci.md).
screenshot:
	SIGNALTRACE_UPDATE_SCREENSHOT=1 .venv-newest/bin/python -m pytest -q -p no:randomly \
	  tests/test_panel_browser.py tests/test_demo_patterns_browser.py tests/test_flame_viewer.py

# Build the documentation site (mkdocs, strict) into .cache/site.
docs:
	.venv-newest/bin/mkdocs build --strict
