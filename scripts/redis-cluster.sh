#!/usr/bin/env bash
# A throwaway Redis Cluster for tests: 3 masters + 3 replicas on 127.0.0.1, nothing on
# disk outside one temp dir. `start` is idempotent (an already healthy cluster is kept),
# `stop` shuts every node down and removes the dir, `status` exits 0 when healthy,
# `node-start PORT` restarts one node a test killed.
#   REDIS_CLUSTER_BASE_PORT (default 7100): ports BASE..BASE+5, cluster bus +10000.
#   REDIS_CLUSTER_DIR (default /tmp/nestjs-api-auth-cluster-<BASE>).
#   REDIS_CLUSTER_BIND (default 127.0.0.1): the addresses the nodes listen on, space-separated.
#   REDIS_CLUSTER_HOST (default the first of BIND): the address nodes announce to clients
#   (MOVED, CLUSTER SLOTS) and this script talks to (the fleet soak uses a bridge address).
set -uo pipefail

BASE=${REDIS_CLUSTER_BASE_PORT:-7100}
DIR=${REDIS_CLUSTER_DIR:-/tmp/nestjs-api-auth-cluster-$BASE}
BIND=${REDIS_CLUSTER_BIND:-127.0.0.1}
HOST=${REDIS_CLUSTER_HOST:-${BIND%% *}}
PORTS=$(seq "$BASE" $((BASE + 5)))

cli() { redis-cli -h "$HOST" -p "$1" "${@:2}" 2>/dev/null; }

healthy() {
  for p in $PORTS; do
    cli "$p" cluster info | grep -q '^cluster_state:ok' || return 1
    [ "$(cli "$p" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" = 6 ] || return 1
    # A replica counts once its first sync is done.
    if cli "$p" role | head -1 | grep -q slave; then
      cli "$p" info replication | grep -q '^master_link_status:up' || return 1
    fi
  done
  [ "$(for p in $PORTS; do cli "$p" role | head -1; done | grep -c master)" = 3 ]
}

node_start() {
  # Restarts one node of a running cluster (after a test killed it), same config file.
  local p=$1
  local reach=()
  # Off loopback, clients in other network namespaces connect: no password, so say so.
  [ "$HOST" = 127.0.0.1 ] || reach=(--protected-mode no --cluster-announce-ip "$HOST")
  # shellcheck disable=SC2086
  redis-server --port "$p" --bind $BIND "${reach[@]}" --cluster-enabled yes \
    --cluster-config-file "$DIR/$p/nodes.conf" --cluster-node-timeout 1000 \
    --save "" --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0 \
    --dir "$DIR/$p" --daemonize yes --pidfile "$DIR/$p/redis.pid" --logfile "$DIR/$p/redis.log"
}

start() {
  local t0=$(date +%s%N)
  if healthy; then echo "redis-cluster: already up on $BASE-$((BASE + 5))"; return 0; fi
  stop quiet
  mkdir -p "$DIR"
  for p in $PORTS; do
    mkdir -p "$DIR/$p"
    node_start "$p" || { echo "redis-cluster: node $p did not start"; return 1; }
  done
  for p in $PORTS; do
    for _ in $(seq 1 100); do [ "$(cli "$p" ping)" = PONG ] && break; sleep 0.05; done
  done
  local hosts=""
  for p in $PORTS; do hosts="$hosts $HOST:$p"; done
  # shellcheck disable=SC2086
  redis-cli --cluster create $hosts --cluster-replicas 1 --cluster-yes >"$DIR/create.log" 2>&1 \
    || { echo "redis-cluster: create failed (see $DIR/create.log)"; return 1; }
  for _ in $(seq 1 300); do
    if healthy; then
      echo "redis-cluster: up on $BASE-$((BASE + 5)) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
      return 0
    fi
    sleep 0.05
  done
  echo "redis-cluster: not healthy after 15 s"; return 1
}

stop() {
  local t0=$(date +%s%N)
  for p in $PORTS; do
    # Only nodes this script started: their pid file is in our dir.
    if [ -f "$DIR/$p/redis.pid" ]; then
      cli "$p" shutdown nosave >/dev/null || kill "$(cat "$DIR/$p/redis.pid")" 2>/dev/null
    fi
  done
  for p in $PORTS; do
    for _ in $(seq 1 100); do
      [ -f "$DIR/$p/redis.pid" ] && kill -0 "$(cat "$DIR/$p/redis.pid")" 2>/dev/null || break
      sleep 0.05
    done
  done
  rm -rf "$DIR"
  [ "${1:-}" = quiet ] || echo "redis-cluster: stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  node-start) node_start "${2:?port}" ;;
  status) if healthy; then echo "redis-cluster: ok on $BASE-$((BASE + 5))"; else echo "redis-cluster: not ok"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status"; exit 2 ;;
esac
