# The two commands README.md gives: `make demo` and `make test`.
.PHONY: demo test bench docs screenshot

demo:
	demo_project/run.sh

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
