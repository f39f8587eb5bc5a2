#!/bin/bash
# Instructions per request at sipd over UDP, TLS, WebSocket (ws:) and secure WebSocket (wss:),
# side by side in one run: workload a_min (lua/a_min.lua: every OPTIONS answered 200
# statelessly), one worker, under valgrind --tool=callgrind.
#
# Usage: benches/load/tls.sh
#
# sipp (Debian's sip-tester) is built without TLS, so the client is tests/tls/sip_tls_client.py
# (Python's ssl module): N OPTIONS one after the other over ONE TLS connection (or UDP
# datagrams), each answered before the next; over ws:/wss: the client is tests/node/ws_options.mjs
# (node, the `ws` package: run `npm ci` in tests/node first), the same OPTIONS one per frame over
# ONE connection. For each transport, two runs of N1 and N2 requests;
# Ir(N2)-Ir(N1) / (N2-N1) in the sipd process (counters zeroed with callgrind_control -z once it
# is up), so startup and the one handshake cancel out: the figure is the per-message cost of an
# established TLS connection (record decryption/encryption, stream framing) or WebSocket
# connection (frame decoding and masking, plus TLS on wss:) against UDP.
#
# Env knobs: N1=100 N2=600  SIPD=path (default: CARGO_TARGET_DIR=/work/target-perf cargo build
#   --release -p sipd, then that binary)  OUT=dir (default benches/load/results/tls-<ts>)
#   PPORT=25090 (UDP) TPORT=25091 (TLS) WPORT=25092 (ws) SPORT=25093 (wss), 127.0.0.1 only.
#   TRANSPORTS="udp tls ws wss" (a subset to measure fewer).
# Kamailio is not measured over TLS: its tls module (kamailio-tls-modules) is not installed here.
#
# Every run is bounded by timeout(1); sipd runs as our child and is stopped by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TS=$(date +%Y%m%d-%H%M%S)
OUT=$(abs_dir "${OUT:-$HERE/results/tls-$TS}") || die "cannot create OUT=${OUT:-}"
N1=${N1:-100}
N2=${N2:-600}
PPORT=${PPORT:-25090}
TPORT=${TPORT:-25091}
WPORT=${WPORT:-25092}
SPORT=${SPORT:-25093}
TRANSPORTS=${TRANSPORTS:-udp tls ws wss}
WSCLIENT=$ROOT/tests/node/ws_options.mjs
CLIENT=$ROOT/tests/tls/sip_tls_client.py
PPID_=""
UASPID=""
FAILURES=()

need valgrind "apt-get install valgrind"
need python3 "apt-get install python3"
need openssl "apt-get install openssl"
case " $TRANSPORTS " in
*" ws "* | *" wss "*)
	need node "apt-get install nodejs npm"
	[ -d "$ROOT/tests/node/node_modules/ws" ] || die "run npm ci in $ROOT/tests/node (the ws package)"
	;;
esac

if [ -z "${SIPD:-}" ]; then
	log "building sipd (release, CARGO_TARGET_DIR=/work/target-perf)"
	(cd "$ROOT" && CARGO_TARGET_DIR=/work/target-perf cargo build --release -p sipd -q) || die "build failed"
	SIPD=/work/target-perf/release/sipd
fi
[ -x "$SIPD" ] || die "no sipd binary at $SIPD"

trap 'proxy_stop' EXIT INT TERM

# A self-signed certificate for 127.0.0.1 (the client trusts it as its CA).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1 || die "openssl: $(cat "$OUT/openssl.log")"
cat > "$OUT/sipd.toml" <<TOML
listen = ["udp:127.0.0.1:$PPORT", "tls:127.0.0.1:$TPORT", "ws:127.0.0.1:$WPORT", "wss:127.0.0.1:$SPORT"]
workers = 1
log_level = "warn"
script = "$HERE/lua/a_min.lua"
modules = ["sl"]
[tls]
certificate = "$OUT/cert.pem"
private_key = "$OUT/key.pem"
TOML

tcp_busy() { ss -Hltn "sport = :$1" | grep -q .; }

# cg_run <proto> <n> <dir>: sets IR
cg_run() {
	local proto=$1 n=$2 d=$3 pid flag=""
	rm -rf "$d"; mkdir -p "$d"
	valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log" \
		"$SIPD" run --config "$OUT/sipd.toml" > "$d/proxy.log" 2>&1 &
	PPID_=$!
	for _ in $(seq 1 600); do
		port_busy "$PPORT" && tcp_busy "$TPORT" && tcp_busy "$WPORT" && tcp_busy "$SPORT" && break
		kill -0 "$PPID_" 2>/dev/null || { tail -20 "$d/proxy.log"; die "sipd died at startup"; }
		sleep 0.1
	done
	sleep 3
	for pid in $(proxy_pids); do timeout 30 callgrind_control -z "$pid" > /dev/null 2>&1 || log "callgrind_control -z $pid failed"; done
	case $proto in
	ws | wss)
		local port=$WPORT; [ "$proto" = wss ] && port=$SPORT
		NODE_EXTRA_CA_CERTS="$OUT/cert.pem" timeout 300 node "$WSCLIENT" "$proto://127.0.0.1:$port" "$n" 20 \
			> "$d/client.out" 2>&1 || fail "$proto N=$n: client failed ($d/client.out)"
		;;
	*)
		[ "$proto" = udp ] && flag=--udp
		local port=$TPORT; [ "$proto" = udp ] && port=$PPORT
		timeout 300 python3 "$CLIENT" options 127.0.0.1 "$port" --ca "$OUT/cert.pem" --name 127.0.0.1 \
			--count "$n" --timeout 20 $flag > "$d/client.out" 2>&1 || fail "$proto N=$n: client failed ($d/client.out)"
		;;
	esac
	sleep 0.5
	proxy_stop
	read -r IR _ _ < <(python3 "$HERE/tools/stats.py" cg "$d")
	check_positive "$proto N=$n instructions" "$IR" "$d/vg.*.log"
}

printf 'transport\tIr(N1=%s)\tIr(N2=%s)\tIr/request\n' "$N1" "$N2" > "$OUT/summary.tsv"
for proto in $TRANSPORTS; do
	cg_run "$proto" "$N1" "$OUT/$proto/n$N1"; a=$IR
	cg_run "$proto" "$N2" "$OUT/$proto/n$N2"; b=$IR
	per=$(python3 -c "print('%.0f' % (($b - $a) / ($N2 - $N1)))" 2>/dev/null || echo "-")
	log "$proto: Ir($N1)=$a Ir($N2)=$b => $per Ir/request"
	printf '%s\t%s\t%s\t%s\n' "$proto" "$a" "$b" "$per" >> "$OUT/summary.tsv"
done
column -t "$OUT/summary.tsv"
echo "results: $OUT"
fail_summary
