#!/usr/bin/env bash
# A local fleetcore cluster on one machine, no containers: PostgreSQL (scripts/postgres.sh), nats-server,
# N nodes and HAProxy in TCP mode in front of their MQTT listeners (checked with /readyz).
#   scripts/cluster.sh start [N]   starts it (N = 3 nodes), prints where everything listens
#   scripts/cluster.sh stop        stops it and deletes its directory
# Node i (0-based) listens on MQTT 1884+i, TLS 8884+i, WSS 8444+i, API 9444+i, metrics 9101+i; HAProxy
# on 1883 (MQTT) and 8883 (MQTT over TLS, passed through); NATS on 4222. FC_CLUSTER_DIR moves its
# directory (default /tmp/fc-cluster-<checkout>), FLEETCORE its binary, FC_CLUSTER_BASE the port base.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FC_CLUSTER_DIR:-/tmp/fc-cluster-$(pwd | md5sum | cut -c1-8)}
bin=${FLEETCORE:-$(pwd)/build/src/server/fleetcore}
base=${FC_CLUSTER_BASE:-0}
nats_port=$((4222 + base)); lb_mqtt=$((1883 + base)); lb_mqtts=$((8883 + base))

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "cluster: nothing listens on port $1" >&2
  return 1
}

stop() {
  for pidfile in "$dir"/*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for pidfile in "$dir"/*.pid; do
    [ -f "$pidfile" ] || continue
    for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$dir"
}

case ${1:-} in
  start)
    n=${2:-3}
    stop
    mkdir -p "$dir"
    pg=$(scripts/postgres.sh start)
    db=fc_cluster_$(basename "$dir" | tr -c 'a-z0-9_\n' _)
    psql -q -v ON_ERROR_STOP=1 "$pg dbname=postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" \
      >/dev/null
    nats-server -a 127.0.0.1 -p "$nats_port" >"$dir/nats.log" 2>&1 &
    echo $! >"$dir/nats.pid"
    wait_port "$nats_port"
    servers=""
    tls_servers=""
    for i in $(seq 0 $((n - 1))); do
      mkdir -p "$dir/n$i"
      chmod 700 "$dir/n$i"
      # One CA and server certificate for the cluster: the first node creates them, the others copy them.
      if [ "$i" -gt 0 ]; then cp -a "$dir/n0/tls" "$dir/n$i/"; fi
      p=$((base + i))
      "$bin" serve --data-dir "$dir/n$i" --storage "postgresql:$pg dbname=$db" --cluster-nats "nats://127.0.0.1:$nats_port" \
        --node-id "n$i" --endpoint-host localhost --mqtt "localhost:$((1884 + p))" --mqtts "localhost:$((8884 + p))" \
        --wss "localhost:$((8444 + p))" --api "localhost:$((9444 + p))" --metrics "localhost:$((9101 + p))" \
        >"$dir/n$i.log" 2>&1 &
      echo $! >"$dir/n$i.pid"
      for _ in $(seq 400); do [ -f "$dir/n$i/listeners.json" ] && break; sleep 0.05; done
      [ -f "$dir/n$i/listeners.json" ] || { cat "$dir/n$i.log" >&2; exit 1; }
      servers+="    server n$i 127.0.0.1:$((1884 + p)) check port $((9101 + p)) inter 500ms fall 2 rise 1
"
      tls_servers+="    server n$i 127.0.0.1:$((8884 + p)) check port $((9101 + p)) inter 500ms fall 2 rise 1
"
    done
    cat >"$dir/haproxy.cfg" <<EOF
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
frontend mqtt
    bind 127.0.0.1:$lb_mqtt
    default_backend mqtt_nodes
frontend mqtts
    bind 127.0.0.1:$lb_mqtts
    default_backend mqtts_nodes
backend mqtt_nodes
    balance leastconn
    option httpchk GET /readyz
    option redispatch
    retries 2
$servers
backend mqtts_nodes
    balance leastconn
    option httpchk GET /readyz
    option redispatch
    retries 2
$tls_servers
EOF
    haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
    echo $! >"$dir/haproxy.pid"
    wait_port "$lb_mqtt"
    echo "cluster: $n nodes in $dir; MQTT 127.0.0.1:$lb_mqtt, MQTT/TLS 127.0.0.1:$lb_mqtts (HAProxy), NATS $nats_port"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start [N] | stop" >&2
    exit 2
    ;;
esac
