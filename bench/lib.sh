# Helpers the benchmark scripts share; sourced after they set OUT (their results file).
# log LINE...: prints and appends to $OUT.
log() { echo "$*" | tee -a "$OUT"; }
# A TCP port free on 127.0.0.1 now (bind it soon: another process may take it).
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to 20 s for 127.0.0.1:PORT to accept connections.
wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# User + system CPU ticks of process PID so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# mosquitto's configuration beside fleetcore (on stdout): PORT on 127.0.0.1, the CA and server certificate
# of DIR (ca.crt, server.crt, server.key: fleetcore's <data_dir>/tls), client certificates required,
# and TCP_NODELAY as fleetcore sets it (without it each CONNACK after a TLS 1.3 handshake waits ~40 ms
# for a delayed ACK).
mosquitto_mtls_conf() {  # PORT DIR
  cat <<CONF
listener $1 127.0.0.1
cafile $2/ca.crt
certfile $2/server.crt
keyfile $2/server.key
require_certificate true
allow_anonymous true
set_tcp_nodelay true
max_connections -1
log_dest none
user $(id -un)
CONF
}

# One device certificate for a fleet that shares it: a policy POLICY allowing iot:* and an ACTIVE
# certificate attached to it, made with the aws CLI against the fleetcore of data directory DATA whose
# API listens on localhost:API. Writes DIR/dev.crt and DIR/dev.key and copies the broker's CA and
# server certificate to DIR (ca.crt, server.crt, server.key) for mosquitto beside it.
allow_all_device() {  # DATA API DIR POLICY
  local aws=(env AWS_SHARED_CREDENTIALS_FILE="$1/aws-credentials" AWS_CONFIG_FILE=/dev/null AWS_CA_BUNDLE="$1/tls/ca.crt"
             AWS_PAGER="" /usr/bin/aws --endpoint-url "https://localhost:$2" --region us-east-1 --output json)
  "${aws[@]}" iot create-policy --policy-name "$4" --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' >/dev/null
  local arn
  arn=$("${aws[@]}" iot create-keys-and-certificate --set-as-active --certificate-pem-outfile "$3/dev.crt" \
    --private-key-outfile "$3/dev.key" --query certificateArn --output text)
  "${aws[@]}" iot attach-policy --policy-name "$4" --target "$arn"
  cp "$1/tls/server.crt" "$1/tls/server.key" "$1/tls/ca.crt" "$3/"
}
