#!/usr/bin/env bash
# Installs speedscope (the flame-graph viewer, a static web app on the npm registry) into
# .cache/speedscope for tests/test_flame_viewer.py, which opens a --signaltrace-trace file
# in it with headless chromium. The test calls this script itself when the app is missing.
#
# Never fails the run: without npm, or when the install fails (no network), it prints why
# and returns 0, and the viewer test then skips with its own reason.
# Prints the app's folder (dist/release) last when it is there.
set -uo pipefail
cd "$(dirname "$0")/../.."

VERSION=1.25.0
PREFIX=.cache/speedscope
RELEASE=$PREFIX/node_modules/speedscope/dist/release

if [ -f "$RELEASE/index.html" ] && grep -q "\"version\": \"$VERSION\"" "$PREFIX/node_modules/speedscope/package.json" 2>/dev/null; then
  echo "speedscope.sh: speedscope $VERSION already installed"
  echo "$RELEASE"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "speedscope.sh: no npm on this machine; cannot install speedscope, the viewer test will skip"
  exit 0
fi
mkdir -p "$PREFIX"
if ! npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error "speedscope@$VERSION" >/dev/null; then
  echo "speedscope.sh: npm install speedscope@$VERSION failed; the viewer test will skip"
  exit 0
fi
if [ -f "$RELEASE/index.html" ]; then
  echo "speedscope.sh: installed speedscope $VERSION"
  echo "$RELEASE"
else
  echo "speedscope.sh: speedscope $VERSION has no dist/release/index.html; the viewer test will skip"
fi
exit 0
