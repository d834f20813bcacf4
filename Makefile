# The two commands README.md gives: `make demo` and `make test`.
.PHONY: demo test bench

test:
	tests/scripts/test.sh

bench:
	.venv-newest/bin/python benchmarks/overhead.py
