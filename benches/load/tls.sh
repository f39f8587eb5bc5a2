#!/bin/bash
# Instructions per request at sipd over UDP, TLS, WebSocket (ws:) and secure WebSocket (wss:),
# side by side in one run: workload a_min (lua/a_min.lua: every OPTIONS answered 200
# statelessly), one worker, under valgrind --tool=callgrind.
#
# With PROXIES="sipd kamailio" (or KAMAILIO=1), Kamailio 5.6 runs the same a_min.lua (app_lua,
# kamailio/bench_tls.cfg: one UDP receiver, one TCP/TLS worker, -x tlsf -X tlsf, its tls module
# with the same test certificate) over udp and tls (it has no ws:/wss: here: that needs its
# websocket module and an HTTP upgrade route), measured the same way in its busiest process.
#
# Usage: benches/load/tls.sh    PROXIES="sipd kamailio" benches/load/tls.sh
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
#   PROXIES="sipd" (default), "kamailio" or "sipd kamailio"; KAMAILIO=1 adds kamailio.
#   Kamailio needs apt-get install kamailio kamailio-lua-modules kamailio-tls-modules.
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
PROXIES=${PROXIES:-sipd}
[ "${KAMAILIO:-0}" = 1 ] && case " $PROXIES " in *" kamailio "*) ;; *) PROXIES="$PROXIES kamailio";; esac
KAM_MM=${KAM_MM:-"-x tlsf -X tlsf"}
KAMLIB=/usr/lib/x86_64-linux-gnu/kamailio/modules
WSCLIENT=$ROOT/tests/node/ws_options.mjs
CLIENT=$ROOT/tests/tls/sip_tls_client.py
PPID_=""
UASPID=""
FAILURES=()

need valgrind "apt-get install valgrind"
need python3 "apt-get install python3"
need openssl "apt-get install openssl"
case " $PROXIES " in *" kamailio "*)
	need kamailio "apt-get install kamailio kamailio-lua-modules kamailio-tls-modules"
	[ -e "$KAMLIB/app_lua.so" ] || die "app_lua missing (apt-get install kamailio-lua-modules)"
	[ -e "$KAMLIB/tls.so" ] || die "the tls module is missing (apt-get install kamailio-tls-modules)"
	mkdir -p "$OUT/kamailio-run";;
esac
case " $PROXIES " in *" sipd "*) case " $TRANSPORTS " in
*" ws "* | *" wss "*)
	need node "apt-get install nodejs npm"
	[ -d "$ROOT/tests/node/node_modules/ws" ] || die "run npm ci in $ROOT/tests/node (the ws package)"
	;;
esac;; esac

case " $PROXIES " in *" sipd "*)
if [ -z "${SIPD:-}" ]; then
	log "building sipd (release, CARGO_TARGET_DIR=/work/target-perf)"
	(cd "$ROOT" && CARGO_TARGET_DIR=/work/target-perf cargo build --release -p sipd -q) || die "build failed"
	SIPD=/work/target-perf/release/sipd
fi
[ -x "$SIPD" ] || die "no sipd binary at $SIPD";;
esac

trap 'proxy_stop' EXIT INT TERM

# A self-signed certificate for 127.0.0.1 (the client trusts it as its CA).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" > "$OUT/openssl.log" 2>&1 || die "openssl: $(cat "$OUT/openssl.log")"
# sipd listens on the measured transports only (an older binary may lack ws:/wss:); UDP always
LISTEN="\"udp:127.0.0.1:$PPORT\""
case " $TRANSPORTS " in *" tls "*) LISTEN="$LISTEN, \"tls:127.0.0.1:$TPORT\"";; esac
case " $TRANSPORTS " in *" ws "*) LISTEN="$LISTEN, \"ws:127.0.0.1:$WPORT\"";; esac
case " $TRANSPORTS " in *" wss "*) LISTEN="$LISTEN, \"wss:127.0.0.1:$SPORT\"";; esac
cat > "$OUT/sipd.toml" <<TOML
listen = [$LISTEN]
workers = 1
log_level = "warn"
script = "$HERE/lua/a_min.lua"
modules = ["sl"]
[tls]
certificate = "$OUT/cert.pem"
private_key = "$OUT/key.pem"
TOML

tcp_busy() { ss -Hltn "sport = :$1" | grep -q .; }

# cg_run <proxy> <proto> <n> <dir>: sets IR (of the busiest process: Kamailio forks one
# process per receiver; valgrind follows the forks, one cg.<pid> each)
cg_run() {
	local proxy=$1 proto=$2 n=$3 d=$4 pid flag="" up
	rm -rf "$d"; mkdir -p "$d"
	case $proxy in
	sipd)
		valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log" \
			"$SIPD" run --config "$OUT/sipd.toml" > "$d/proxy.log" 2>&1 &
		;;
	kamailio)
		# shellcheck disable=SC2086
		valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log" \
			kamailio -f "$HERE/kamailio/bench_tls.cfg" -DD -E -m 512 -M 16 \
			-l "udp:127.0.0.1:$PPORT" -l "tls:127.0.0.1:$TPORT" -Y "$OUT/kamailio-run" $KAM_MM \
			-A "LUA_SCRIPT=\"$HERE/lua/a_min.lua\"" -A "TLS_CERT=\"$OUT/cert.pem\"" \
			-A "TLS_KEY=\"$OUT/key.pem\"" > "$d/proxy.log" 2>&1 &
		;;
	esac
	PPID_=$!
	for _ in $(seq 1 600); do
		up=1
		port_busy "$PPORT" || up=0
		[ "$proxy" = kamailio ] && { tcp_busy "$TPORT" || up=0; }
		if [ "$proxy" = sipd ]; then
			case " $TRANSPORTS " in *" tls "*) tcp_busy "$TPORT" || up=0;; esac
			case " $TRANSPORTS " in *" ws "*) tcp_busy "$WPORT" || up=0;; esac
			case " $TRANSPORTS " in *" wss "*) tcp_busy "$SPORT" || up=0;; esac
		fi
		[ $up = 1 ] && break
		kill -0 "$PPID_" 2>/dev/null || { tail -20 "$d/proxy.log"; die "$proxy died at startup"; }
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
	check_positive "$proxy $proto N=$n instructions" "$IR" "$d/vg.*.log"
}

printf 'proxy\ttransport\tIr(N1=%s)\tIr(N2=%s)\tIr/request\n' "$N1" "$N2" > "$OUT/summary.tsv"
for proxy in $PROXIES; do
	for proto in $TRANSPORTS; do
		if [ "$proxy" = kamailio ]; then
			case $proto in udp | tls) ;; *) continue;; esac
		fi
		sub=$proto; [ "$proxy" = sipd ] || sub=$proxy-$proto
		cg_run "$proxy" "$proto" "$N1" "$OUT/$sub/n$N1"; a=$IR
		cg_run "$proxy" "$proto" "$N2" "$OUT/$sub/n$N2"; b=$IR
		per=$(python3 -c "print('%.0f' % (($b - $a) / ($N2 - $N1)))" 2>/dev/null || echo "-")
		log "$proxy $proto: Ir($N1)=$a Ir($N2)=$b => $per Ir/request"
		printf '%s\t%s\t%s\t%s\t%s\n' "$proxy" "$proto" "$a" "$b" "$per" >> "$OUT/summary.tsv"
	done
done
column -t "$OUT/summary.tsv"
echo "results: $OUT"
fail_summary
