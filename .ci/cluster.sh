#!/usr/bin/env bash
# CI: the real-cluster tests. Starts a 3-master + 3-replica Redis Cluster on loopback
# (scripts/redis-cluster.sh), runs test/cluster with vitest.cluster.config.ts, stops the
# cluster, and ends with one line "cluster: N passed, N failed" (and the time it took).
set -uo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s%N)
scripts/redis-cluster.sh start || { echo "cluster: 0 passed, 1 failed (the cluster did not start)"; exit 1; }
trap 'scripts/redis-cluster.sh stop >/dev/null' EXIT

REPORT=.vitest-cluster-report.json
rm -f "$REPORT"
npx vitest run -c vitest.cluster.config.ts --reporter=default --reporter=json --outputFile.json="$REPORT"
status=$?

scripts/redis-cluster.sh stop
trap - EXIT
secs=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9 }")
if [ -f "$REPORT" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const failed = r.numFailedTests + (r.numRuntimeErrorTests ?? 0);
    console.log(`cluster: ${r.numPassedTests} passed, ${failed} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : "") + ` (${process.argv[2]} s with cluster start and stop)`);
    if (r.numTotalTests === 0 || failed > 0) process.exit(1);
  ' "$REPORT" "$secs" || status=1
  rm -f "$REPORT"
else
  echo "cluster: 0 passed, 1 failed (no report)"
  status=1
fi
exit $status
