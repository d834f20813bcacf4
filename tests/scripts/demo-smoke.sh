#!/usr/bin/env bash
# Proves README's demo command works as a new user would run it: `make demo` with
# a fresh virtualenv and a fresh database, on a free port, until the sign-up page
# (with the debug toolbar) is served; then checks the panel in chromium
# (tests/scripts/demo_browser.py) and stops the server.
set -euo pipefail
cd "$(dirname "$0")/../.."

python=$(tests/scripts/find-python.sh)
scratch=$(mktemp -d)
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$scratch/demo.log"

echo "=== demo smoke test: make demo on port $port (log: $log)"
# setsid: the server and its autoreloader child share one process group to stop.
DEMO_PORT=$port DEMO_VENV="$scratch/venv" DEMO_DATABASE="$scratch/db.sqlite3" setsid make demo >"$log" 2>&1 &
demo_pid=$!
stop() { kill -- "-$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; rm -rf "$scratch"; }
trap stop EXIT

for _ in $(seq 1 600); do
  if "$python" - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
page = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/signup/", timeout=5).read().decode()
assert "<h1>Sign up</h1>" in page and 'id="djDebug"' in page, "not the sign-up page with the toolbar"
PY
    echo "=== demo smoke test passed: the sign-up page is served, with the debug toolbar"
    browser_python=${BROWSER_PYTHON:-.venv-newest/bin/python}
    if [ -x "$browser_python" ]; then
      "$browser_python" tests/scripts/demo_browser.py "$port"
    else
      echo "SKIP demo browser test: no $browser_python with Playwright (run make test)"
    fi
    exit 0
  fi
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "make demo exited early:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 1
done
echo "the sign-up page was not served within 10 minutes:" >&2
cat "$log" >&2
exit 1
