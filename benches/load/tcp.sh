#!/bin/bash
# Workload a_min (lua/a_min.lua: every OPTIONS answered 200 statelessly) over TCP with many
# persistent client connections, at sipd and at Kamailio 5.6 side by side in one run (issue 13).
#
# A client is one sipp call over its own TCP connection (`sipp -t tn`,
# sipp/options_tcp_client.xml): PER OPTIONS one after the other on that connection, each
# answered before the next.
#   1. throughput: CLIENTS clients at once (all opened within the first second), PER requests
#      each; requests per second and requests per CPU-second of the proxy (schedstat of every
#      thread of the proxy and its children, as run.sh does);
#   2. instructions: under valgrind --tool=callgrind, CG_CLIENTS clients sending CG_PER1 and then
#      (a second run) CG_PER2 requests each; the instructions of all the proxy's processes
#      (Kamailio reads TCP in its tcp workers and accepts in tcp_main) are summed, and
#        per request on an established connection = (Ir2 - Ir1) / (CG_CLIENTS * (CG_PER2 - CG_PER1))
#        per connection (accept, first read, close)  = Ir1 / CG_CLIENTS - CG_PER1 * per request
#
# Usage: benches/load/tcp.sh            PROXIES=sipd benches/load/tcp.sh
# Env knobs: CLIENTS=1000 PER=20 CG_CLIENTS=100 CG_PER1=5 CG_PER2=25 WORKERS=1 (sipd --workers,
#   Kamailio children and tcp_children) PROXIES="sipd kamailio" CALLGRIND=1
#   SIPD=path (default: cargo build --release -p sipd, then target/release/sipd)
#   OUT=dir (default benches/load/results/tcp-<ts>)  PPORT=25180 (TCP, 127.0.0.1 only)
#
# Every sipp run is bounded by -m, -timeout and timeout(1); the proxy runs as our child and is
# stopped by PID. The open-files limit is raised for sipp and the proxies (a client is a socket).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TS=$(date +%Y%m%d-%H%M%S)
OUT=$(abs_dir "${OUT:-$HERE/results/tcp-$TS}") || die "cannot create OUT=${OUT:-}"
CLIENTS=${CLIENTS:-1000}
PER=${PER:-20}
CG_CLIENTS=${CG_CLIENTS:-100}
CG_PER1=${CG_PER1:-5}
CG_PER2=${CG_PER2:-25}
WORKERS=${WORKERS:-1}
PROXIES=${PROXIES:-"sipd kamailio"}
CALLGRIND=${CALLGRIND:-1}
PPORT=${PPORT:-25180}
KAM_MM=${KAM_MM:-"-x tlsf -X tlsf"}
SCRIPT=$HERE/lua/a_min.lua
PPID_=""
UASPID=""
FAILURES=()

need sipp "apt-get install sip-tester"
need python3 "apt-get install python3"
need ss "apt-get install iproute2"
case " $PROXIES " in *" kamailio "*)
	need kamailio "apt-get install kamailio kamailio-lua-modules"
	[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/app_lua.so ] || die "app_lua missing (apt-get install kamailio-lua-modules)"
	mkdir -p "$OUT/kamailio-run";;
esac
[ "$CALLGRIND" = 1 ] && need valgrind "apt-get install valgrind"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
[ "$(ulimit -n)" -gt $((CLIENTS + 200)) ] || die "open-files limit $(ulimit -n) is below CLIENTS=$CLIENTS + 200"

case " $PROXIES " in *" sipd "*)
if [ -z "${SIPD:-}" ]; then
	log "building sipd (release)"
	( cd "$ROOT" && cargo build --release -q -p sipd ) || die "cargo build --release -p sipd failed"
	SIPD=${CARGO_TARGET_DIR:-$ROOT/target}/release/sipd
fi
[ -x "$SIPD" ] || die "no sipd binary at $SIPD";;
esac

tcp_busy() { ss -Hltn "sport = :$1" | grep -q .; }
tcp_busy "$PPORT" && die "TCP port $PPORT on this machine is busy: set PPORT"

trap 'proxy_stop' EXIT INT TERM

# scenario <per> <file>: the client scenario with <per> requests per connection
scenario() { sed "s/@PER@/$1/" "$HERE/sipp/options_tcp_client.xml" > "$2"; }

# proxy_start <proxy> <workers> <dir> [wrapper...]: in the background, wait for the port
proxy_start() {
	local proxy=$1 n=$2 d=$3 i; shift 3
	case $proxy in
		sipd)
			"$@" "$SIPD" run --listen "tcp:127.0.0.1:$PPORT" --script "$SCRIPT" --workers "$n" \
				--log-level error > "$d/proxy.log" 2>&1 &
			;;
		kamailio)
			# shellcheck disable=SC2086
			"$@" kamailio -f "$HERE/kamailio/bench_tcp.cfg" -DD -E -m 512 -M 16 -A BENCH_CHILDREN="$n" \
				-l "tcp:127.0.0.1:$PPORT" -Y "$OUT/kamailio-run" $KAM_MM -A "LUA_SCRIPT=\"$SCRIPT\"" \
				> "$d/proxy.log" 2>&1 &
			;;
	esac
	PPID_=$!
	for i in $(seq 1 600); do
		tcp_busy "$PPORT" && break
		kill -0 "$PPID_" 2>/dev/null || { tail -20 "$d/proxy.log"; die "$proxy died at startup"; }
		sleep 0.1
	done
	tcp_busy "$PPORT" || die "$proxy did not listen on $PPORT"
	if [ $# -gt 0 ]; then sleep 3; else sleep 0.5; fi
}

# proxy_stop from lib.sh waits for a UDP port; wait for the TCP one here
proxy_stop_tcp() {
	proxy_stop
	for _ in $(seq 1 50); do tcp_busy "$PPORT" || break; sleep 0.1; done
}

# clients <dir> <clients> <per> <timeout_s>: sets OK FAILED
clients() {
	local d=$1 c=$2 per=$3 t=$4
	scenario "$per" "$d/client.xml"
	echo "sipp 127.0.0.1:$PPORT -t tn -max_socket $((c + 100)) -sf client.xml -l $c -m $c -r $c -rp 1000 -timeout ${t}s" > "$d/cmd.txt"
	( cd "$d" && timeout -k 5 $((t + 10)) sipp "127.0.0.1:$PPORT" -i 127.0.0.1 -t tn -max_socket $((c + 100)) \
		-nostdin -timeout "${t}s" -trace_stat -stf stat.csv -fd 1 -sf client.xml \
		-l "$c" -m "$c" -r "$c" -rp 1000 > sipp.out 2>&1 )
	read -r OK FAILED _ _ _ < <(python3 "$HERE/tools/stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	check_calls "$d: clients" "$OK" "$c" "$d/sipp.out, $d/proxy.log"
}

# throughput <proxy>: sets TP_RATE TP_PER_CPU
throughput() {
	local proxy=$1 d=$OUT/$1/throughput n0 n1 t0 t1
	mkdir -p "$d"
	proxy_start "$proxy" "$WORKERS" "$d"
	n0=$(proxy_ns); t0=$(date +%s.%N)
	clients "$d" "$CLIENTS" "$PER" 120
	n1=$(proxy_ns); t1=$(date +%s.%N)
	proxy_stop_tcp
	local reqs=$((OK * PER))
	TP_RATE=$(python3 -c "print('%.0f' % ($reqs / ($t1 - $t0)))")
	TP_PER_CPU=$(python3 -c "c=($n1 - $n0) / 1e9; print('%.0f' % ($reqs / c) if c > 0 else 'nan')")
	log "$proxy: $OK of $CLIENTS clients x $PER requests ($FAILED failed) = $TP_RATE req/s wall, proxy CPU $(( (n1 - n0) / 1000000 )) ms = $TP_PER_CPU req/CPU-s"
	check_positive "$proxy requests per CPU-s" "$TP_PER_CPU" "$d/proxy.log"
}

# cg_run <proxy> <per> <dir>: sets IR (all processes summed)
cg_run() {
	local proxy=$1 per=$2 d=$3 pid
	rm -rf "$d"; mkdir -p "$d"
	proxy_start "$proxy" 1 "$d" valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log"
	for pid in $(proxy_pids); do timeout 30 callgrind_control -z "$pid" > /dev/null 2>&1 || log "callgrind_control -z $pid failed"; done
	clients "$d" "$CG_CLIENTS" "$per" 300
	sleep 1
	proxy_stop_tcp
	read -r _ IR _ < <(python3 "$HERE/tools/stats.py" cg "$d")
	check_positive "$proxy callgrind per=$per instructions" "$IR" "$d/vg.*.log"
}

{
	echo "date: $(date -u)"
	echo "kernel: $(uname -r); cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
	case " $PROXIES " in *" sipd "*) echo "sipd: $SIPD ($("$SIPD" --version 2>&1)); git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)";; esac
	command -v kamailio >/dev/null && kamailio -v 2>&1 | head -1
	echo "CLIENTS=$CLIENTS PER=$PER CG_CLIENTS=$CG_CLIENTS CG_PER1=$CG_PER1 CG_PER2=$CG_PER2 WORKERS=$WORKERS KAM_MM='$KAM_MM'"
} | tee "$OUT/info.txt"
printf 'proxy\treq_per_s\treq_per_cpu_s\tIr_per_request\tIr_per_connection\n' > "$OUT/summary.tsv"
for proxy in $PROXIES; do
	throughput "$proxy"
	PER_REQ=- PER_CONN=-
	if [ "$CALLGRIND" = 1 ]; then
		cg_run "$proxy" "$CG_PER1" "$OUT/$proxy/cg-$CG_PER1"; a=$IR
		cg_run "$proxy" "$CG_PER2" "$OUT/$proxy/cg-$CG_PER2"; b=$IR
		PER_REQ=$(python3 -c "print('%.0f' % (($b - $a) / ($CG_CLIENTS * ($CG_PER2 - $CG_PER1))))")
		PER_CONN=$(python3 -c "print('%.0f' % ($a / $CG_CLIENTS - $CG_PER1 * ($b - $a) / ($CG_CLIENTS * ($CG_PER2 - $CG_PER1))))")
		log "$proxy: Ir($CG_CLIENTS x $CG_PER1)=$a Ir($CG_CLIENTS x $CG_PER2)=$b => $PER_REQ Ir/request, $PER_CONN Ir/connection"
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$proxy" "$TP_RATE" "$TP_PER_CPU" "$PER_REQ" "$PER_CONN" >> "$OUT/summary.tsv"
done
column -t "$OUT/summary.tsv"
log "results in $OUT"
fail_summary
