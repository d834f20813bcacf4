# The two commands README.md gives: `make demo` and `make test`.
.PHONY: demo graph test bench docs screenshot

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
	  && "$(DEMO_VENV)/bin/python" -m pip install --quiet -e ".[toolbar,otel]" \
	    opentelemetry-exporter-otlp-proto-http opentelemetry-instrumentation-django >&2 \
	  || { echo "make graph: could not set up $(DEMO_VENV); see the pip output above." >&2; exit 1; }; \
	fi
	@"$(DEMO_VENV)/bin/python" demo_project/manage.py signaltrace graph $(ARGS)

test:
	tests/scripts/test.sh

bench:
	.venv-newest/bin/python benchmarks/overhead.py

# Regenerate the panel screenshot docs/panel.md shows (needs chromium).
screenshot:
	SIGNALTRACE_UPDATE_SCREENSHOT=1 .venv-newest/bin/python -m pytest -q tests/test_panel_browser.py

# Build the documentation site (mkdocs, strict) into .cache/site.
docs:
	.venv-newest/bin/mkdocs build --strict
