#!/usr/bin/env bash
# The real-viewer test: Arize Phoenix, in a virtualenv of its own (.venv-phoenix,
# kept between runs), serving on 127.0.0.1 with its telemetry off, receives the
# spans of tests/phoenix/ over OTLP and answers them back from its REST API.
#
# Usage: tests/scripts/phoenix.sh PYTHON
#   PYTHON: the interpreter of a test virtualenv (Django, signaltrace[otel] and the
#   test extras installed), which runs the test itself.
# Skips, saying why, only when Phoenix cannot be installed (no package index).
set -euo pipefail
cd "$(dirname "$0")/../.."

test_python=$1
venv=.venv-phoenix
marker="$venv/.installed"
requirement="arize-phoenix"

phoenix_python() {
  # Phoenix supports CPython 3.10-3.13: the newest of those found.
  local version candidate
  local pyenv_root
  pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for version in 3.13 3.12 3.11 3.10; do
    if command -v "python$version" >/dev/null 2>&1 && "python$version" -c "" >/dev/null 2>&1; then
      command -v "python$version"; return
    fi
    for candidate in "$pyenv_root"/versions/"$version".*/bin/python"$version"; do
      if [ -x "$candidate" ] && "$candidate" -c "" >/dev/null 2>&1; then echo "$candidate"; return; fi
    done
  done
  return 1
}

echo "=== phoenix: real OTLP viewer test"
if [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$requirement" ]; then
  if ! python=$(phoenix_python); then
    echo "SKIP phoenix: no CPython 3.10-3.13 found to install arize-phoenix in"; exit 0
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv"
  echo "installing $requirement into $venv (about a minute, once)"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"; then
    rm -rf "$venv"
    echo "SKIP phoenix: pip could not install $requirement (is the package index reachable?)"; exit 0
  fi
  echo "$requirement" > "$marker"
fi

free_port() {
  "$test_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
grpc_port=$(free_port)
workdir=$(mktemp -d)
log="$workdir/phoenix.log"

PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$port PHOENIX_GRPC_PORT=$grpc_port PHOENIX_WORKING_DIR=$workdir \
  PHOENIX_TELEMETRY_ENABLED=false PHOENIX_ALLOW_EXTERNAL_RESOURCES=false \
  "$venv/bin/phoenix" serve >"$log" 2>&1 &
phoenix_pid=$!
cleanup() {
  kill "$phoenix_pid" 2>/dev/null || true
  wait "$phoenix_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

url="http://127.0.0.1:$port"
if ! "$test_python" - "$url" "$phoenix_pid" <<'PY'; then
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("phoenix exited")
    time.sleep(0.5)
sys.exit("phoenix did not answer /healthz within 120 s")
PY
  echo "phoenix failed to start; its log:"; tail -n 40 "$log"; exit 1
fi
echo "phoenix is up at $url"
PHOENIX_URL=$url "$test_python" -m pytest -q -p no:cacheprovider -rs tests/phoenix
