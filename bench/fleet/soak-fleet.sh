#!/usr/bin/env bash
# `npm run soak:fleet`: the fleet soak. Builds a private network (a bridge, one network
# namespace per app instance, veth pairs, addresses in 10.231.0.0/24), a Redis Cluster
# of its own (3 masters + 3 replicas on 7200-7205, announcing a bridge address), a TCP
# forwarder to the machine's PostgreSQL on a bridge address and a database of its own,
# then runs the driver (fleet-driver.js), which starts the instances, sends traffic,
# injects faults and prints the table. Everything it made is removed on exit, Ctrl-C
# or failure. It refuses to start while any of its names, addresses or ports exist
# (`--cleanup` removes what an earlier run left behind). Needs root.
#
# Details and results: bench/README.md, "Fleet soak". Environment: FLEET_SECONDS
# (default 120), FLEET_INSTANCES (2-9, default 4), FLEET_CONNECTIONS, FLEET_MAX_REQUESTS,
# FLEET_DELAY_MS (one-way delay of the slowed instance, default 40), DATABASE_URL
# (admin connection, default postgresql://postgres@127.0.0.1:5432/postgres).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIST=$ROOT/dist-bench/fleet
STATE=/tmp/nestjs-api-auth-soak-fleet
NET=10.231.0
BRIDGE=aafleet-br
NS=aafleet-
INSTANCES=${FLEET_INSTANCES:-4}
REDIS_BASE=7200
REDIS_HOST=$NET.2      # the nodes' announced address, blackholed to partition an instance
PG_HOST=$NET.3         # the forwarder to PostgreSQL
REDIS_BACK=$NET.4      # the nodes again, for the delay proxy only
PG_BACK=$NET.5         # the forwarder again, for the delay proxy only
PG_PORT=5432
DATABASE=api_auth_soak_fleet
DELAYED=2              # the instance whose Redis and PostgreSQL traffic can be slowed
ADMIN_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
PG_TARGET=$(node -e 'const u = new URL(process.argv[1]); console.log(`${u.hostname}:${u.port || 5432}`)' "$ADMIN_URL")

cluster() {
  REDIS_CLUSTER_BASE_PORT=$REDIS_BASE REDIS_CLUSTER_DIR=$STATE/redis \
    REDIS_CLUSTER_BIND="$REDIS_HOST $REDIS_BACK" REDIS_CLUSTER_HOST=$REDIS_HOST \
    "$ROOT/scripts/redis-cluster.sh" "$@"
}

# The root namespace's links with the soak's prefix (the bridge, the veths' host ends).
links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$NS"; }

# Prints every trace of an earlier run; silent when there is none.
leftovers() {
  [ -e "$STATE" ] && echo "state directory $STATE"
  ip netns list 2>/dev/null | grep -o "^$NS[0-9]*" | sed 's/^/network namespace /'
  links | sed 's/^/link /'
  ip -o addr show 2>/dev/null | grep -o "inet $NET\.[0-9]*" | sed 's/^inet /address /'
  ip route show 2>/dev/null | grep "^$NET\." | sed 's/^/route /'
  ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ":(1?720[0-5])$" | sed 's/^/listening on /'
  if [ -f "$DIST/fleet-database.js" ]; then
    DATABASE_URL=$ADMIN_URL node "$DIST/fleet-database.js" exists "$DATABASE" 2>/dev/null && echo "database $DATABASE"
  fi
  return 0
}

# Removes only what this soak makes: its namespaces (and the processes in them), links,
# the Redis nodes and forwarder whose pid files are in its state directory, its database.
cleanup() {
  local pid ns
  for ns in $(ip netns list 2>/dev/null | grep -o "^$NS[0-9]*"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  for pid in $(cat "$STATE"/*.pid 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  [ -d "$STATE/redis" ] && cluster stop >/dev/null 2>&1
  sleep 0.5
  for ns in $(ip netns list 2>/dev/null | grep -o "^$NS[0-9]*"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  for pid in $(cat "$STATE"/*.pid 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  for link in $(links); do ip link del "$link" 2>/dev/null; done
  if [ -f "$DIST/fleet-database.js" ]; then
    DATABASE_URL=$ADMIN_URL node "$DIST/fleet-database.js" drop "$DATABASE" || echo "soak:fleet: could not drop database $DATABASE"
  fi
  rm -rf "$STATE"
}

# Waits until a TCP port answers (from the root namespace, or inside namespace $3).
wait_port() {
  local host=$1 port=$2 ns=${3:-}
  for _ in $(seq 1 100); do
    if [ -n "$ns" ]; then
      ip netns exec "$ns" timeout 0.5 bash -c "</dev/tcp/$host/$port" 2>/dev/null && return 0
    else
      timeout 0.5 bash -c "</dev/tcp/$host/$port" 2>/dev/null && return 0
    fi
    sleep 0.1
  done
  return 1
}

fail() { echo "soak:fleet: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
[ -f "$DIST/fleet-driver.js" ] || fail "not built: run 'npm run soak:fleet'"
command -v redis-server >/dev/null || fail "redis-server not found"

if [ "${1:-}" = --cleanup ]; then
  found=$(leftovers)
  [ -z "$found" ] && { echo "soak:fleet: nothing to clean up"; exit 0; }
  echo "$found" | sed 's/^/soak:fleet: removing /'
  cleanup
  found=$(leftovers)
  [ -z "$found" ] || { echo "$found" | sed 's/^/soak:fleet: still there: /'; exit 1; }
  exit 0
fi
[ $# -eq 0 ] || fail "usage: $0 [--cleanup]"
[[ "$INSTANCES" =~ ^[2-9]$ ]] || fail "FLEET_INSTANCES must be 2-9"

found=$(leftovers)
if [ -n "$found" ]; then
  echo "$found" | sed 's/^/soak:fleet: already exists: /' >&2
  fail "refusing to start; remove an earlier run's left-overs with 'npm run soak:fleet -- --cleanup'"
fi
# The state directory is the lock: a second run started now fails here.
mkdir "$STATE" 2>/dev/null || fail "$STATE appeared meanwhile: another run?"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

# The private network: a bridge holding the service addresses, one namespace per instance.
ip link add "$BRIDGE" type bridge || fail "cannot create bridge $BRIDGE"
for host in 1 2 3 4 5; do ip addr add "$NET.$host/24" dev "$BRIDGE" || fail "cannot add $NET.$host"; done
ip link set "$BRIDGE" up
for i in $(seq 1 "$INSTANCES"); do
  ns=$NS$i
  ip netns add "$ns" || fail "cannot create namespace $ns"
  ip link add "${NS}v$i" type veth peer name eth0 netns "$ns" || fail "cannot create veth for $ns"
  ip link set "${NS}v$i" master "$BRIDGE" up
  ip -n "$ns" addr add "$NET.$((10 + i))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
echo "soak:fleet: network up: bridge $BRIDGE, $INSTANCES namespaces ($(ms) ms)"

cluster start || fail "the Redis Cluster did not start"

DATABASE_URL=$ADMIN_URL node "$DIST/fleet-database.js" create "$DATABASE" || fail "cannot create database $DATABASE"

node "$DIST/tcp-proxy.js" "$PG_HOST:$PG_PORT=$PG_TARGET" "$PG_BACK:$PG_PORT=$PG_TARGET" >/dev/null &
echo $! >"$STATE/forwarder.pid"
wait_port "$PG_HOST" "$PG_PORT" || fail "the PostgreSQL forwarder did not start"

# The delayed instance reaches the Redis nodes and PostgreSQL through a proxy in its own
# namespace: there the service addresses are local (on lo) and the proxy forwards to the
# back-door addresses, adding delay while switched on. The bridge keeps answering ARP for
# the service addresses: the namespace answers only for addresses of the asking interface.
ns=$NS$DELAYED
ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
ip -n "$ns" addr add "$REDIS_HOST/32" dev lo
ip -n "$ns" addr add "$PG_HOST/32" dev lo
routes=("$PG_HOST:$PG_PORT=$PG_BACK:$PG_PORT")
for p in $(seq "$REDIS_BASE" $((REDIS_BASE + 5))); do routes+=("$REDIS_HOST:$p=$REDIS_BACK:$p"); done
ip netns exec "$ns" node "$DIST/tcp-proxy.js" --delay-ms "${FLEET_DELAY_MS:-40}" "${routes[@]}" >/dev/null &
echo $! >"$STATE/delay-proxy.pid"
wait_port "$REDIS_HOST" "$REDIS_BASE" "$ns" || fail "the delay proxy did not start"
echo "soak:fleet: services up: Redis Cluster on $REDIS_HOST:$REDIS_BASE-$((REDIS_BASE + 5)), PostgreSQL via $PG_HOST:$PG_PORT ($(ms) ms)"

FLEET_INSTANCES=$INSTANCES FLEET_NET=$NET FLEET_NS=$NS FLEET_STATE=$STATE FLEET_DELAYED=$DELAYED \
  FLEET_REDIS_HOST=$REDIS_HOST FLEET_REDIS_BASE=$REDIS_BASE FLEET_DATABASE=$DATABASE \
  FLEET_PG=$PG_HOST:$PG_PORT DATABASE_URL=$ADMIN_URL \
  node "$DIST/fleet-driver.js" &
driver=$!
echo $driver >"$STATE/driver.pid"
# `wait` returns at once on a signal, so the traps run without waiting for the driver.
wait $driver
status=$?
exit $status
