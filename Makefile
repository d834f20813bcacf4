# The two commands README.md gives: `make demo` and `make test`.
.PHONY: demo test bench

demo:
	demo_project/run.sh

test:
	tests/scripts/test.sh

bench:
	.venv-newest/bin/python benchmarks/overhead.py
