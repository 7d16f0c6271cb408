# Shared by the bench scripts that run servers under a load generator
# (`source benches/lib.sh` from the repository root).
# shellcheck shell=bash

# Every server runs in its own process group, so that stopping it stops
# the server itself and not only a wrapper shell; whatever is still
# running when the script ends (the load failed, Ctrl-C) is stopped too.
SERVERS=()
stop_servers() {
  for pid in "${SERVERS[@]}"; do
    kill -- "-$pid" 2>/dev/null || true
  done
  for pid in "${SERVERS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  SERVERS=()
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server LOG COMMAND...: runs `COMMAND 127.0.0.1:PORT` in the
# background, its standard output in LOG, in a process group of its own,
# and waits up to 5 s for it to accept connections. Sets SERVER_PID and
# SERVER_PORT.
start_server() {
  local log=$1; shift
  SERVER_PORT=$(free_port)
  set -m  # a background job gets its own process group (pgid = its pid)
  "$@" "127.0.0.1:$SERVER_PORT" >"$log" 2>/dev/null &
  SERVER_PID=$!
  set +m
  SERVERS+=("$SERVER_PID")
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$SERVER_PORT),0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
}
