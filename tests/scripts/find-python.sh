#!/usr/bin/env bash
# Print the path of the newest (or, with --oldest, the oldest) Python >= 3.10 found
# on PATH or under pyenv. Falls back to python3.
set -u
order="3.14 3.13 3.12 3.11 3.10"
[ "${1:-}" = "--oldest" ] && order="3.10 3.11 3.12 3.13 3.14"
pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for version in $order; do
  if command -v "python$version" >/dev/null 2>&1 && "python$version" -c "" >/dev/null 2>&1; then
    command -v "python$version"; exit 0
  fi
  for candidate in "$pyenv_root"/versions/"$version".*/bin/python"$version"; do
    if [ -x "$candidate" ] && "$candidate" -c "" >/dev/null 2>&1; then
      echo "$candidate"; exit 0
    fi
  done
done
command -v python3
