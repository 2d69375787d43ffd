#!/usr/bin/env bash
# CI: every TypeScript snippet of README.md and docs/ compiled against the built package
# (and the runnable ones run against PostgreSQL and Redis). Ends with one line:
# "docs: N passed, N failed (N compiled, N run)". Run from anywhere; needs the services up.
set -uo pipefail
cd "$(dirname "$0")/.."

npm run build >/dev/null || { echo "docs: build failed"; exit 1; }
rm -rf dist-scripts
npx tsc -p scripts/tsconfig.json || { echo "docs: the checker does not compile"; exit 1; }
node dist-scripts/check-docs.js
