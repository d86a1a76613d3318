#!/usr/bin/env bash
# The embedded broker's rate with many idle connections beside one producer
# and one consumer (BENCHMARKS.md, "The embedded broker with many idle
# connections"):
#
#   bash benches/idle-crowd.sh BROKER_BINARY PORT IDLE [CLIENT_BINARY]
#
# starts `BROKER_BINARY serve` on 127.0.0.1:PORT, opens IDLE connections that
# send CONNECT (heart-beats off) and stay silent, then runs
# `CLIENT_BINARY bench` (default: the same binary) with 50,000 100-byte
# messages through it and prints its rates.
set -euo pipefail
bin=$1 port=$2 idle=$3 client=${4:-$1}
ready=$(mktemp)
rm -f "$ready"
"$bin" serve --listen "127.0.0.1:$port" --handshake-timeout 60s 2>/dev/null &
broker=$!
trap 'kill $broker ${crowd:-} 2>/dev/null || true' EXIT
sleep 0.3
python3 - "$port" "$idle" "$ready" <<'PY' &
import socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0")
    held.append(s)
    if i % 500 == 499:
        time.sleep(0.05)  # within the listen backlog
open(ready, "w").write("ready")
time.sleep(300)
PY
crowd=$!
for _ in $(seq 600); do [ -s "$ready" ] && break; sleep 0.1; done
sleep 0.5
"$client" bench --url "stomp://127.0.0.1:$port" --count 50000 --size 100 2>&1 | grep -E "sent|received"
rm -f "$ready"
