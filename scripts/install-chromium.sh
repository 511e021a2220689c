#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests (packages/dashboard/test).
# Idempotent: does nothing when /usr/bin/chromium exists. Uses apt-get only; Playwright's own
# browser download is never used (this network reaches Debian's packages and npm, nothing else).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: /usr/bin/chromium is present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')); nothing to do"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-chromium: not root and no sudo; install Debian's 'chromium' package by hand" >&2
    exit 1
  fi
fi

echo "install-chromium: /usr/bin/chromium is missing; running apt-get update"
$SUDO apt-get update -qq
echo "install-chromium: installing Debian's chromium package (and its fonts)"
# fonts-liberation gives the screenshots metric-compatible sans fonts instead of a bare fallback.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
