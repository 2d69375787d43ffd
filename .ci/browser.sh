#!/usr/bin/env bash
# The browser tests (test/browser, `npm run test:browser`): installs Debian's chromium
# when it is missing, runs them against the sample app on Express and Fastify, and ends
# with one plain "browser: N passed, N failed" line. A browser that cannot be installed
# is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "Chromium is not at $CHROMIUM; installing Debian's chromium package"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    echo "could not install chromium"
    echo "browser: 0 passed, 1 failed"
    exit 1
  fi
fi
"$CHROMIUM" --version 2>/dev/null | head -n 1

if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund || { echo "npm ci failed"; echo "browser: 0 passed, 1 failed"; exit 1; }
fi

REPORT=$(mktemp)
trap 'rm -f "$REPORT"' EXIT
start=$(date +%s)
CHROMIUM_PATH="$CHROMIUM" npm run test:browser -- --reporter=default --reporter=json --outputFile.json="$REPORT"
status=$?
echo "browser tests took $(( $(date +%s) - start )) s"

if [ -s "$REPORT" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    // Nothing here is ever skipped on purpose: a test that did not run (its browser or
    // app failed to start) counts as failed.
    const failed = r.numFailedTests + (r.numRuntimeErrorTests ?? 0) + r.numPendingTests + r.numTodoTests;
    console.log(`browser: ${r.numPassedTests} passed, ${failed} failed`);
    if (r.numTotalTests === 0 || failed > 0) process.exit(1);
  ' "$REPORT" || status=1
else
  echo "browser: 0 passed, 1 failed"
  status=1
fi
exit $status
