#!/usr/bin/env bash
# Installs Debian's headless chromium and its driver for the panel's browser test
# (tests/test_panel_browser.py). Called once by tests/scripts/test.sh.
#
# Never fails the run: where nothing can be installed (not root, no apt-get, no
# network) it prints why and returns 0, and the browser test then skips with its
# own reason. Playwright's Python package comes from the test extras; its
# `playwright install` cannot download browsers here, so the test drives
# /usr/bin/chromium instead.
set -uo pipefail

have_browser() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have_browser; then
  echo "browser.sh: $(chromium --version 2>/dev/null | head -n1) and chromedriver already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser.sh: no apt-get on this machine; cannot install chromium, the browser test will skip"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "browser.sh: not root and no passwordless sudo; cannot install chromium, the browser test will skip"
    exit 0
  fi
else
  SUDO=""
fi

echo "browser.sh: installing chromium and chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "browser.sh: apt-get update failed; cannot install chromium, the browser test will skip"
  exit 0
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null; then
  echo "browser.sh: apt-get install chromium chromium-driver failed; the browser test will skip"
  exit 0
fi
if have_browser; then
  echo "browser.sh: installed $(chromium --version 2>/dev/null | head -n1)"
else
  echo "browser.sh: chromium still not found after installing; the browser test will skip"
fi
exit 0
