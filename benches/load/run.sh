#!/bin/bash
# Load harness: the Kamailio baseline's stateless workloads at sipd and at Kamailio, one after
# the other in one run, with the same Lua scripts.
#
# Usage: benches/load/run.sh [WORKLOAD...]      (default: a_min a_real relay)
#   a_min   OPTIONS answered 200 statelessly, minimal route        (lua/a_min.lua)
#   a_real  same with maxfwd, PV reads, UA/header/method checks    (lua/a_real.lua)
#   relay   MESSAGE relayed statelessly to a sipp UAS and its 200 back (lua/relay.lua)
#
# For each workload and proxy (sipd release build, then Kamailio + app_lua with -x tlsf -X tlsf):
#   1. throughput: closed loop `sipp -r 100000 -rp 1000 -l 100 -m $TP_CALLS`; requests per
#      second, and requests per CPU-second of the proxy (utime+stime from /proc/PID/stat of the
#      proxy and its children, just before and after sipp);
#   2. instructions per request: valgrind --tool=callgrind, 1 worker / children=1, two runs of
#      CG_N1 and CG_N2 requests at CG_RATE/s; Ir(N2)-Ir(N1) / (N2-N1) in the busiest process
#      (counters zeroed with callgrind_control -z once the proxy is up, in both runs).
# Then prints the table with sipd/Kamailio ratios, and callgrind_annotate of sipd's N2 run.
#
# Env knobs:
#   QUICK=1            short runs (TP_CALLS=30000, CG_N1=100, CG_N2=600): under 3 minutes
#   TP_CALLS=60000     requests per throughput run     CG_N1=500 CG_N2=3000 CG_RATE=250
#   WORKERS=1          sipd --workers and Kamailio children in the throughput runs
#   SIPD=path          sipd binary (default: cargo build --release -p sipd, then target/release/sipd)
#   PROXIES="sipd kamailio"   CALLGRIND=1 (0 skips it)   OUT=dir (default benches/load/results/<ts>;
#                      a relative OUT is made absolute: Kamailio runs from /)
#   PPORT=25060 SPORT=25061 UPORT=25070   proxy, sipp UAC and sipp UAS ports (127.0.0.1 only)
#
# A run where a proxy's calls all failed, or whose figure is 0, exits 1 after the table and names
# each such figure and the log to read (a "-" in the table is never a measurement).
#
# Only 127.0.0.1. Every sipp run is bounded by -m, -timeout and timeout(1); proxies run in the
# foreground as our children and are stopped by PID. Nothing is killed by name.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TS=$(date +%Y%m%d-%H%M%S)
OUT=$(abs_dir "${OUT:-$HERE/results/$TS}") || die "cannot create OUT=${OUT:-}"
if [ "${QUICK:-0}" = 1 ]; then
	TP_CALLS=${TP_CALLS:-30000}; CG_N1=${CG_N1:-100}; CG_N2=${CG_N2:-600}
else
	TP_CALLS=${TP_CALLS:-60000}; CG_N1=${CG_N1:-500}; CG_N2=${CG_N2:-3000}
fi
CG_RATE=${CG_RATE:-250}
WORKERS=${WORKERS:-1}
PROXIES=${PROXIES:-"sipd kamailio"}
CALLGRIND=${CALLGRIND:-1}
PPORT=${PPORT:-25060}
SPORT=${SPORT:-25061}
UPORT=${UPORT:-25070}
KAM_MM=${KAM_MM:-"-x tlsf -X tlsf"}
CLK=$(getconf CLK_TCK)
SUMMARY=$OUT/summary.tsv
PPID_=""   # the proxy we started (sipd, kamailio main, or valgrind running either)
UASPID=""


need sipp "apt-get install sip-tester"
need python3 "apt-get install python3"
need ss "apt-get install iproute2"
case " $PROXIES " in *" kamailio "*)
	need kamailio "apt-get install kamailio kamailio-lua-modules"
	[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/app_lua.so ] || die "app_lua missing (apt-get install kamailio-lua-modules)";;
esac
[ "$CALLGRIND" = 1 ] && need valgrind "apt-get install valgrind"

if [ -z "${SIPD:-}" ]; then
	log "building sipd (release)"
	( cd "$ROOT" && cargo build --release -q -p sipd ) || die "cargo build --release -p sipd failed"
	SIPD=${CARGO_TARGET_DIR:-$ROOT/target}/release/sipd
fi
[ -x "$SIPD" ] || die "no sipd binary at $SIPD"

for p in $PPORT $SPORT $UPORT; do port_busy $p && die "UDP port $p on this machine is busy: set PPORT/SPORT/UPORT"; done

mkdir -p "$OUT/kamailio-run"
# The relay script with its destination filled in, shared by both proxies.
sed "s|@BENCH_DST@|sip:127.0.0.1:$UPORT|" "$HERE/lua/relay.lua" > "$OUT/relay.lua"

script_of() {
	case $1 in
		a_min) echo "$HERE/lua/a_min.lua";;
		a_real) echo "$HERE/lua/a_real.lua";;
		relay) echo "$OUT/relay.lua";;
		*) die "unknown workload $1 (a_min a_real relay)";;
	esac
}

# utime+stime ticks of the proxy process (all its threads) and its direct children
proxy_ticks() {
	local t=0 p line rest
	for p in /proc/[0-9]*; do
		read -r line 2>/dev/null < "$p/stat" || continue
		rest=${line##*) }
		set -- $rest
		if [ "${p#/proc/}" = "$PPID_" ] || [ "$2" = "$PPID_" ]; then
			t=$((t + ${12} + ${13}))
		fi
	done
	echo $t
}

# nanoseconds on CPU of every thread of the proxy and its children (/proc/PID/task/*/schedstat):
# the same CPU time as proxy_ticks at ns instead of 10 ms resolution


# proxy_start <proxy> <workload> <workers> <logfile> [wrapper...]: in the background, wait for the port
proxy_start() {
	local proxy=$1 w=$2 n=$3 plog=$4 i settle; shift 4
	local script; script=$(script_of "$w")
	port_busy $PPORT && die "port $PPORT busy before starting $proxy"
	case $proxy in
		sipd)
			"$@" "$SIPD" run --listen "udp:127.0.0.1:$PPORT" --script "$script" --workers "$n" \
				--log-level error > "$plog" 2>&1 &
			settle=0.3;;
		kamailio)
			# shellcheck disable=SC2086
			"$@" kamailio -f "$HERE/kamailio/bench_lua.cfg" -DD -E -m 512 -M 16 -n "$n" -A BENCH_CHILDREN="$n" \
				-l "udp:127.0.0.1:$PPORT" -Y "$OUT/kamailio-run" $KAM_MM -A "LUA_SCRIPT=\"$script\"" > "$plog" 2>&1 &
			settle=1;;
	esac
	PPID_=$!
	for i in $(seq 1 600); do
		port_busy $PPORT && break
		kill -0 "$PPID_" 2>/dev/null || { tail -20 "$plog"; die "$proxy died at startup"; }
		sleep 0.1
	done
	port_busy $PPORT || die "$proxy did not bind $PPORT"
	[ $# -gt 0 ] && settle=3   # under valgrind: let the workers finish loading the script
	sleep $settle
}


trap 'uas_stop; proxy_stop' EXIT INT TERM

# uas_start <dir> <calls> <timeout_s>: the sipp UAS of the relay workload
uas_start() {
	local d=$1 m=$2 t=$3
	( cd "$d" && exec timeout -k 5 $((t + 10)) sipp -i 127.0.0.1 -p "$UPORT" -nostdin -timeout "${t}s" \
		-sf "$HERE/sipp/uas_message.xml" -m "$m" > uas.out 2>&1 ) &
	UASPID=$!
	for _ in $(seq 1 50); do port_busy "$UPORT" && break; sleep 0.1; done
}

# uac_run <dir> <workload> <timeout_s> <sipp rate args...>
uac_run() {
	local d=$1 w=$2 t=$3 sf; shift 3
	case $w in relay) sf=$HERE/sipp/message.xml;; *) sf=$HERE/sipp/options.xml;; esac
	echo "sipp 127.0.0.1:$PPORT -i 127.0.0.1 -p $SPORT -nostdin -timeout ${t}s -trace_stat -stf stat.csv -fd 1 -sf $sf $*" > "$d/cmd.txt"
	( cd "$d" && timeout -k 5 $((t + 10)) sipp "127.0.0.1:$PPORT" -i 127.0.0.1 -p "$SPORT" -nostdin -timeout "${t}s" \
		-trace_stat -stf stat.csv -fd 1 -sf "$sf" "$@" > sipp.out 2>&1 )
}


# throughput <proxy> <workload>: sets TP_* results
throughput() {
	local proxy=$1 w=$2 d=$OUT/$2-$1/throughput k0 k1 n0 n1
	mkdir -p "$d"
	TP_CALIB=$(calib)
	proxy_start "$proxy" "$w" "$WORKERS" "$d/proxy.log"
	[ "$w" = relay ] && uas_start "$d" "$TP_CALLS" 60
	k0=$(proxy_ticks); n0=$(proxy_ns)
	uac_run "$d" "$w" 50 -r 100000 -rp 1000 -l 100 -m "$TP_CALLS"
	k1=$(proxy_ticks); n1=$(proxy_ns)
	uas_stop
	proxy_stop
	read -r TP_OK TP_FAILED TP_RETRANS TP_ELAPSED TP_RATE < <(python3 "$HERE/tools/stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	TP_CPU=$(python3 -c "print('%.2f' % (($k1 - $k0) / $CLK))")
	TP_PER_CPU=$(python3 -c "c=($k1 - $k0) / $CLK; print('%.0f' % ($TP_OK / c) if c > 0 else 'nan')")
	TP_PER_CPU_NS=$(python3 -c "c=($n1 - $n0) / 1e9; print('%.0f' % ($TP_OK / c) if c > 0 else 'nan')")
	log "$w @ $proxy: $TP_OK ok, $TP_FAILED failed, $TP_RETRANS retrans in ${TP_ELAPSED}s = $TP_RATE req/s; proxy CPU ${TP_CPU}s (utime+stime) = $TP_PER_CPU req/CPU-s, $(( (n1 - n0) / 1000000 )) ms (schedstat) = $TP_PER_CPU_NS req/CPU-s (calib $TP_CALIB)"
	check_calls "$w @ $proxy throughput" "$TP_OK" "$TP_CALLS" "$d/sipp.out, $d/proxy.log"
	check_positive "$w @ $proxy requests/s" "$TP_RATE" "$d/sipp.out"
	check_positive "$w @ $proxy requests per CPU-s" "$TP_PER_CPU_NS" "$d/proxy.log"
}

# cg_one <proxy> <workload> <n> <dir>: one callgrind run of n requests; sets CG1_IR CG1_FAILED CG1_RETRANS
cg_one() {
	local proxy=$1 w=$2 n=$3 d=$4 pid
	rm -rf "$d"; mkdir -p "$d"
	proxy_start "$proxy" "$w" 1 "$d/proxy.log" valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log"
	for pid in $(proxy_pids); do timeout 30 callgrind_control -z "$pid" > /dev/null 2>&1 || log "callgrind_control -z $pid failed"; done
	[ "$w" = relay ] && uas_start "$d" "$n" 120
	uac_run "$d" "$w" 100 -r "$CG_RATE" -rp 1000 -m "$n"
	uas_stop
	sleep 0.5
	proxy_stop
	read -r CG1_IR _ _ < <(python3 "$HERE/tools/stats.py" cg "$d")
	read -r CG1_OK CG1_FAILED CG1_RETRANS _ _ < <(python3 "$HERE/tools/stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	check_calls "$w @ $proxy callgrind N=$n" "$CG1_OK" "$n" "$d/sipp.out, $d/proxy.log, $d/vg.*.log"
	check_positive "$w @ $proxy callgrind N=$n instructions" "$CG1_IR" "$d/vg.*.log"
}

# callgrind <proxy> <workload>: sets CG_* results
callgrind() {
	local proxy=$1 w=$2 d=$OUT/$2-$1/callgrind
	cg_one "$proxy" "$w" "$CG_N1" "$d/n$CG_N1"
	CG_IR1=$CG1_IR CG_F1="$CG1_FAILED/$CG1_RETRANS"
	cg_one "$proxy" "$w" "$CG_N2" "$d/n$CG_N2"
	CG_IR2=$CG1_IR CG_FAILED=$CG1_FAILED CG_RETRANS=$CG1_RETRANS
	CG_PER=$(python3 -c "print('%.0f' % (($CG_IR2 - $CG_IR1) / ($CG_N2 - $CG_N1)))")
	log "$w @ $proxy: callgrind Ir($CG_N1)=$CG_IR1 Ir($CG_N2)=$CG_IR2 (failed/retrans: N1 $CG_F1, N2 $CG_FAILED/$CG_RETRANS) => $CG_PER Ir/request"
	check_positive "$w @ $proxy instructions per request" "$CG_PER" "$d"
}

[ $# -eq 0 ] && set -- a_min a_real relay
{
	echo "date: $(date -u)"
	echo "kernel: $(uname -r); cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
	echo "sipd: $SIPD ($("$SIPD" --version 2>&1)); git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- sipd kemi-runtime modules 2>/dev/null || echo ' + uncommitted changes')"
	command -v kamailio >/dev/null && kamailio -v 2>&1 | head -1
	echo "sipp: $(sipp -v 2>&1 | grep -m1 SIPp)"
	valgrind --version 2>/dev/null
	echo "QUICK=${QUICK:-0} TP_CALLS=$TP_CALLS CG_N1=$CG_N1 CG_N2=$CG_N2 CG_RATE=$CG_RATE WORKERS=$WORKERS KAM_MM='$KAM_MM'"
} | tee "$OUT/info.txt"
printf 'workload\tproxy\trate\tper_cpu_s\tper_cpu_s_ns\tir_per_req\tok\tfailed\tretrans\tcpu_s\tcalib\tcg_n1\tcg_n2\tcg_ir1\tcg_ir2\tcg_failed\tcg_retrans\n' > "$SUMMARY"

for w in "$@"; do
	script_of "$w" > /dev/null
	for proxy in $PROXIES; do
		throughput "$proxy" "$w"
		CG_IR1=- CG_IR2=- CG_PER=- CG_FAILED=- CG_RETRANS=-
		[ "$CALLGRIND" = 1 ] && callgrind "$proxy" "$w"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$proxy" "$TP_RATE" "$TP_PER_CPU" "$TP_PER_CPU_NS" \
			"$CG_PER" "$TP_OK" "$TP_FAILED" "$TP_RETRANS" "$TP_CPU" "$TP_CALIB" "$CG_N1" "$CG_N2" "$CG_IR1" "$CG_IR2" \
			"$CG_FAILED" "$CG_RETRANS" >> "$SUMMARY"
	done
done

echo
python3 "$HERE/tools/stats.py" report "$SUMMARY" | tee "$OUT/report.md"
if [ "$CALLGRIND" = 1 ] && case " $PROXIES " in *" sipd "*) true;; *) false;; esac; then
	for w in "$@"; do
		f=$(python3 "$HERE/tools/stats.py" cg "$OUT/$w-sipd/callgrind/n$CG_N2" | cut -d' ' -f3)
		[ -f "$f" ] || continue
		# --threshold=100: list past the thread-entry frames, which carry the pre-zeroing cost as "self"
		callgrind_annotate --auto=no --inclusive=yes "$f" 2>/dev/null | head -70 > "$OUT/$w-sipd/annotate-inclusive.txt"
		callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null | head -70 > "$OUT/$w-sipd/annotate-self.txt"
	done
	echo "callgrind_annotate of sipd (N2 runs): $OUT/*-sipd/annotate-{inclusive,self}.txt"
fi
log "results in $OUT"
fail_summary || exit 1
