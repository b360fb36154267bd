# Helpers the benchmark scripts share; sourced after they set OUT (their results file).
# log LINE...: prints and appends to $OUT.
log() { echo "$*" | tee -a "$OUT"; }
# A TCP port free on 127.0.0.1 now (bind it soon: another process may take it).
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to 20 s for 127.0.0.1:PORT to accept connections.
wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# User + system CPU ticks of process PID so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
