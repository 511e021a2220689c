#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests (packages/dashboard/test).
# Idempotent: does nothing when /usr/bin/chromium exists. Uses apt-get only; Playwright's own
# browser download is never used (this network reaches Debian's packages and npm, nothing else).
set -euo pipefail
. "$(dirname "$0")/lib/apt-install.sh"

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: /usr/bin/chromium is present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')); nothing to do"
  exit 0
fi

echo "install-chromium: /usr/bin/chromium is missing"
# fonts-liberation gives the screenshots metric-compatible sans fonts instead of a bare fallback.
apt_install install-chromium chromium fonts-liberation
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
