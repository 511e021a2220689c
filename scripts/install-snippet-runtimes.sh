#!/usr/bin/env bash
# Installs Debian's Go, Ruby and PHP so that the signature-verification snippets of
# docs/receiving-webhooks.md run in the tests (packages/server/test/doc-snippets.test.ts);
# Python 3 as well, should the machine lack it. Idempotent: installs only what is missing.
set -euo pipefail
. "$(dirname "$0")/lib/apt-install.sh"

missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v ruby >/dev/null 2>&1 || missing+=(ruby)
command -v php >/dev/null 2>&1 || missing+=(php-cli)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-snippet-runtimes: go, ruby, php and python3 are present; nothing to do"
  exit 0
fi

apt_install install-snippet-runtimes "${missing[@]}"
echo "install-snippet-runtimes: $(go version 2>/dev/null) · $(ruby --version 2>/dev/null | cut -d' ' -f1-2) · $(php --version 2>/dev/null | head -n 1 | cut -d' ' -f1-2)"
