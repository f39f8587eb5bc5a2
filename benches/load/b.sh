#!/bin/bash
# Workload B (the Kamailio baseline's B2): a stateful proxy, complete calls
# INVITE/100/180/200/ACK/BYE/200 through t_relay with record-routing, at sipd and at Kamailio,
# one after the other in one run, with the same Lua script (lua/b_proxy.lua) and the same sipp
# scenarios (sipp/b_uac.xml, sipp/b_uas.xml: sipp's built-in uac/uas, as `sipp -sd uac|uas`
# prints them; the baseline ran them with -sn uac / -sn uas).
#
# Usage: benches/load/b.sh
#
# For each proxy (sipd release build with --workers 1, then Kamailio 5.6 + app_lua with
# tm/rr/sl/maxfwd/siputils, children=1, -x tlsf -X tlsf, kamailio/b_lua.cfg):
#   1. throughput: closed loop `sipp -sf b_uac.xml -r 100000 -rp 1000 -l 100 -m $TP_CALLS`
#      against a sipp UAS (`-sf b_uas.xml -m $TP_CALLS`); calls per second (successful calls /
#      sipp's elapsed time), and calls per CPU-second of the proxy (utime+stime of the proxy and
#      its children from /proc/PID/stat, and /proc/PID/task/*/schedstat, just before and after
#      the UAC). The proxy keeps running ~0.5 s after the UAC ends so the CPU window covers the
#      last BYEs' 200s.
#   2. instructions per call: valgrind --tool=callgrind, sipd --workers 1 / Kamailio -n 1,
#      counters zeroed with callgrind_control -z once the proxy listens, then CG_N1 and CG_N2
#      calls at CG_RATE calls/s in two separate runs; Ir per call = (Ir(N2) - Ir(N1)) / (N2 - N1)
#      in the busiest process (Kamailio's SIP worker; sipd is one process), as run.sh does for A.
# Then prints the table with sipd/Kamailio ratios, and sipd's per-call cost by function
# (inclusive and self, the N2 run minus the N1 run divided by N2-N1).
#
# Env knobs:
#   QUICK=1           short runs (TP_CALLS=5000, CG_N1=50, CG_N2=200, CG_RATE=20): under 3 minutes
#   TP_CALLS=15000    calls per throughput run (the baseline's B sat runs)
#   CG_N1=100 CG_N2=400 CG_RATE=15   the baseline's B-lua-tlsf callgrind runs
#   WORKERS=1         sipd --workers and Kamailio children in the throughput runs
#   SIPD=path         sipd binary (SIPD_NOTE="..." is written to info.txt, e.g. what it was built from)
#                     (default: cargo build --release -p sipd in the workspace's own target dir,
#                     or CARGO_TARGET_DIR when set, as run.sh does)
#   PROXIES="sipd kamailio"   CALLGRIND=1 (0 skips it)   OUT=dir (default benches/load/results/b-<ts>;
#                     made absolute)
#   PPORT=27160 SPORT=27161 UPORT=27170   proxy, sipp UAC, sipp UAS ports (127.0.0.1 only;
#                     run.sh uses 25060/25061/25070, so both can run at once)
#   SIPD_LOG=warn     sipd --log-level (its log is kept per run as proxy.log)
#   SDP_BYTES=12288   the INVITE carries an SDP of about this size (the usual 7 lines plus
#                     `a=x-bench-pad` lines; default 0: the 7 lines, ~130 octets); the
#                     workload is then named b_sdp<SDP_BYTES> in the table
#
# A run where a proxy's calls all failed, or whose figure is 0, exits 1 after the table and names
# each such figure and the log to read.
#
# Only 127.0.0.1. Every sipp run is bounded by -m, -timeout and timeout(1); proxies run in the
# foreground as our children and are stopped by PID. Nothing is killed by name.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TS=$(date +%Y%m%d-%H%M%S)
OUT=$(abs_dir "${OUT:-$HERE/results/b-$TS}") || die "cannot create OUT=${OUT:-}"
if [ "${QUICK:-0}" = 1 ]; then
	TP_CALLS=${TP_CALLS:-5000}; CG_N1=${CG_N1:-50}; CG_N2=${CG_N2:-200}; CG_RATE=${CG_RATE:-20}
else
	TP_CALLS=${TP_CALLS:-15000}; CG_N1=${CG_N1:-100}; CG_N2=${CG_N2:-400}; CG_RATE=${CG_RATE:-15}
fi
WORKERS=${WORKERS:-1}
PROXIES=${PROXIES:-"sipd kamailio"}
CALLGRIND=${CALLGRIND:-1}
PPORT=${PPORT:-27160}
SPORT=${SPORT:-27161}
UPORT=${UPORT:-27170}
SIPD_LOG=${SIPD_LOG:-warn}
KAM_MM=${KAM_MM:-"-x tlsf -X tlsf"}
CLK=$(getconf CLK_TCK)
SUMMARY=$OUT/summary.tsv
SCRIPT=$HERE/lua/b_proxy.lua
UAC_XML=$HERE/sipp/b_uac.xml
UAS_XML=$HERE/sipp/b_uas.xml
export BENCH_DST="sip:127.0.0.1:$UPORT"   # read by b_proxy.lua (os.getenv) in both proxies
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

SIPD_GIVEN=${SIPD:+yes}
if [ -z "${SIPD:-}" ]; then
	log "building sipd (release${CARGO_TARGET_DIR:+, CARGO_TARGET_DIR=$CARGO_TARGET_DIR})"
	( cd "$ROOT" && cargo build --release -q -p sipd ) || die "cargo build --release -p sipd failed"
	SIPD=${CARGO_TARGET_DIR:-$ROOT/target}/release/sipd
fi
[ -x "$SIPD" ] || die "no sipd binary at $SIPD"

# datagrams the kernel dropped on 127.0.0.1:<port> sockets (receive buffer full): the "drops"
# column of /proc/net/udp, per socket, so only this run's sockets count
udp_drops() {
	local hex; hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$2 ~ p"$" { d += $NF } END { print d + 0 }' /proc/net/udp
}
for p in $PPORT $SPORT $UPORT; do port_busy $p && die "UDP port $p on this machine is busy: set PPORT/SPORT/UPORT"; done

mkdir -p "$OUT/kamailio-run"

SDP_BYTES=${SDP_BYTES:-0}
BNAME=b
if [ "$SDP_BYTES" -gt 0 ]; then
	BNAME=b_sdp$SDP_BYTES
	UAC_XML=$OUT/b_uac_sdp$SDP_BYTES.xml
	python3 - "$HERE/sipp/b_uac.xml" "$UAC_XML" "$SDP_BYTES" <<'EOF' || die "cannot write $UAC_XML"
import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(src).read()
anchor = '      a=rtpmap:0 PCMU/8000\n'
if text.count(anchor) != 1:
    sys.exit('b_uac.xml: the SDP line to pad after is not there once')
size, i, pad = 130, 0, []
while size < n:
    line = 'a=x-bench-pad:%04d-%s' % (i, 'x' * 58)
    pad.append('      %s\n' % line)
    size += len(line) + 2
    i += 1
open(dst, 'w').write(text.replace(anchor, anchor + ''.join(pad)))
EOF
fi



# nanoseconds on CPU of every thread of the proxy and its children (schedstat)

# proxy_start <proxy> <workers> <logfile> [wrapper...]: in the background, wait for the port
proxy_start() {
	local proxy=$1 n=$2 plog=$3 i settle; shift 3
	port_busy $PPORT && die "port $PPORT busy before starting $proxy"
	case $proxy in
		sipd)
			echo "BENCH_DST=$BENCH_DST $* $SIPD run --listen udp:127.0.0.1:$PPORT --script $SCRIPT --workers $n --log-level $SIPD_LOG" > "$(dirname "$plog")/proxy_cmd.txt"
			"$@" "$SIPD" run --listen "udp:127.0.0.1:$PPORT" --script "$SCRIPT" --workers "$n" \
				--log-level "$SIPD_LOG" > "$plog" 2>&1 &
			settle=0.3;;
		kamailio)
			echo "BENCH_DST=$BENCH_DST $* kamailio -f $HERE/kamailio/b_lua.cfg -DD -E -m 512 -M 16 -n $n -A BENCH_CHILDREN=$n -l udp:127.0.0.1:$PPORT -Y $OUT/kamailio-run $KAM_MM -A 'LUA_SCRIPT=\"$SCRIPT\"'" > "$(dirname "$plog")/proxy_cmd.txt"
			# shellcheck disable=SC2086
			"$@" kamailio -f "$HERE/kamailio/b_lua.cfg" -DD -E -m 512 -M 16 -n "$n" -A BENCH_CHILDREN="$n" \
				-l "udp:127.0.0.1:$PPORT" -Y "$OUT/kamailio-run" $KAM_MM -A "LUA_SCRIPT=\"$SCRIPT\"" > "$plog" 2>&1 &
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


# the UAS ends by itself after -m calls; give it up to $1 s before stopping it
uas_wait() {
	local i
	[ -n "$UASPID" ] || return 0
	for i in $(seq 1 $(($1 * 10))); do kill -0 "$UASPID" 2>/dev/null || break; sleep 0.1; done
	uas_stop
}
trap 'uas_stop; proxy_stop' EXIT INT TERM

SIPP_ERR="-trace_err -error_file errors.log"

# uas_start <dir> <calls> <timeout_s>
uas_start() {
	local d=$1 m=$2 t=$3
	echo "sipp -i 127.0.0.1 -p $UPORT -nostdin -timeout ${t}s -trace_stat -stf uas_stat.csv -fd 1 $SIPP_ERR -sf $UAS_XML -m $m" > "$d/uas_cmd.txt"
	# shellcheck disable=SC2086
	( cd "$d" && exec timeout -k 5 $((t + 10)) sipp -i 127.0.0.1 -p "$UPORT" -nostdin -timeout "${t}s" \
		-trace_stat -stf uas_stat.csv -fd 1 $SIPP_ERR -sf "$UAS_XML" -m "$m" > uas.out 2>&1 ) &
	UASPID=$!
	for _ in $(seq 1 50); do port_busy "$UPORT" && break; sleep 0.1; done
}

# uac_run <dir> <timeout_s> <sipp rate args...>
uac_run() {
	local d=$1 t=$2; shift 2
	echo "sipp 127.0.0.1:$PPORT -i 127.0.0.1 -p $SPORT -nostdin -timeout ${t}s -trace_stat -stf stat.csv -fd 1 $SIPP_ERR -sf $UAC_XML $*" > "$d/cmd.txt"
	# shellcheck disable=SC2086
	( cd "$d" && timeout -k 5 $((t + 10)) sipp "127.0.0.1:$PPORT" -i 127.0.0.1 -p "$SPORT" -nostdin -timeout "${t}s" \
		-trace_stat -stf stat.csv -fd 1 $SIPP_ERR -sf "$UAC_XML" "$@" > sipp.out 2>&1 )
}



# throughput <proxy>: sets TP_* results
throughput() {
	local proxy=$1 d=$OUT/b-$1/throughput k0 k1 n0 n1
	mkdir -p "$d"
	TP_CALIB=$(calib)
	TP_DROPS_SIPP="-"
	proxy_start "$proxy" "$WORKERS" "$d/proxy.log"
	uas_start "$d" "$TP_CALLS" 70
	k0=$(proxy_ticks); n0=$(proxy_ns)
	uac_run "$d" 60 -r 100000 -rp 1000 -l 100 -m "$TP_CALLS" &
	local uac=$! i
	# the sipp sockets' drops, read while they are open (sampled every 0.2 s; the last sample counts)
	for i in $(seq 1 400); do kill -0 $uac 2>/dev/null || break; TP_DROPS_SIPP="UAC $(udp_drops "$SPORT"), UAS $(udp_drops "$UPORT")"; sleep 0.2; done
	wait $uac
	sleep 0.5
	k1=$(proxy_ticks); n1=$(proxy_ns)
	TP_DROPS=$(udp_drops "$PPORT")
	uas_wait 5
	proxy_stop
	read -r TP_OK TP_FAILED TP_RETRANS TP_ELAPSED TP_RATE < <(python3 "$HERE/tools/b_stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	TP_CPU=$(python3 -c "print('%.2f' % (($k1 - $k0) / $CLK))")
	TP_PER_CPU=$(python3 -c "c=($k1 - $k0) / $CLK; print('%.0f' % ($TP_OK / c) if c > 0 else 'nan')")
	TP_PER_CPU_NS=$(python3 -c "c=($n1 - $n0) / 1e9; print('%.0f' % ($TP_OK / c) if c > 0 else 'nan')")
	log "b @ $proxy: $TP_OK ok, $TP_FAILED failed, $TP_RETRANS retrans in ${TP_ELAPSED}s = $TP_RATE calls/s; proxy CPU ${TP_CPU}s (utime+stime) = $TP_PER_CPU calls/CPU-s, $(( (n1 - n0) / 1000000 )) ms (schedstat) = $TP_PER_CPU_NS calls/CPU-s (calib $TP_CALIB); datagrams dropped at the proxy's socket (receive buffer full): $TP_DROPS (sipp sockets, last sample: $TP_DROPS_SIPP)"
	failure_note "$d"
	check_calls "b @ $proxy throughput" "$TP_OK" "$TP_CALLS" "$d/sipp.out, $d/proxy.log"
	check_positive "b @ $proxy calls/s" "$TP_RATE" "$d/sipp.out"
	check_positive "b @ $proxy calls per CPU-s" "$TP_PER_CPU_NS" "$d/proxy.log"
}

# cg_one <proxy> <n> <dir>: one callgrind run of n calls; sets CG1_IR CG1_FAILED CG1_RETRANS CG1_FILE
cg_one() {
	local proxy=$1 n=$2 d=$3 pid t
	rm -rf "$d"; mkdir -p "$d"
	t=$((n / CG_RATE + 60))
	proxy_start "$proxy" 1 "$d/proxy.log" valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log"
	for pid in $(proxy_pids); do timeout 30 callgrind_control -z "$pid" > /dev/null 2>&1 || log "callgrind_control -z $pid failed"; done
	uas_start "$d" "$n" $((t + 10))
	uac_run "$d" "$t" -r "$CG_RATE" -rp 1000 -m "$n"
	uas_wait 10
	sleep 0.5
	proxy_stop
	read -r CG1_IR CG1_ALL CG1_FILE < <(python3 "$HERE/tools/b_stats.py" cg "$d")
	read -r CG1_OK CG1_FAILED CG1_RETRANS _ _ < <(python3 "$HERE/tools/b_stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	failure_note "$d"
	check_calls "b @ $proxy callgrind N=$n" "$CG1_OK" "$n" "$d/sipp.out, $d/proxy.log, $d/vg.*.log"
	check_positive "b @ $proxy callgrind N=$n instructions" "$CG1_IR" "$d/vg.*.log"
}

# callgrind <proxy>: sets CG_* results
callgrind() {
	local proxy=$1 d=$OUT/b-$1/callgrind
	cg_one "$proxy" "$CG_N1" "$d/n$CG_N1"
	CG_IR1=$CG1_IR CG_ALL1=$CG1_ALL CG_F1=$CG1_FAILED CG_R1=$CG1_RETRANS CG_FILE1=$CG1_FILE
	cg_one "$proxy" "$CG_N2" "$d/n$CG_N2"
	CG_IR2=$CG1_IR CG_ALL2=$CG1_ALL CG_F2=$CG1_FAILED CG_R2=$CG1_RETRANS CG_FILE2=$CG1_FILE
	CG_PER=$(python3 -c "print('%.0f' % (($CG_IR2 - $CG_IR1) / ($CG_N2 - $CG_N1)))")
	CG_PER_ALL=$(python3 -c "print('%.0f' % (($CG_ALL2 - $CG_ALL1) / ($CG_N2 - $CG_N1)))")
	log "b @ $proxy: callgrind Ir($CG_N1)=$CG_IR1 Ir($CG_N2)=$CG_IR2 (failed/retrans: N1 $CG_F1/$CG_R1, N2 $CG_F2/$CG_R2) => $CG_PER Ir/call in the busiest process, $CG_PER_ALL in all processes"
	check_positive "b @ $proxy instructions per call" "$CG_PER" "$d"
}

{
	echo "date: $(date -u)"
	echo "kernel: $(uname -r); cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
	echo "sipd: $SIPD ($("$SIPD" --version 2>&1)); git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- sipd kemi-runtime modules 2>/dev/null || echo ' + uncommitted changes')${SIPD_GIVEN:+ (SIPD given: this is the working tree's state, not necessarily the binary's)}${SIPD_NOTE:+; $SIPD_NOTE}"
	command -v kamailio >/dev/null && kamailio -v 2>&1 | head -1
	echo "sipp: $(sipp -v 2>&1 | grep -m1 SIPp)"
	valgrind --version 2>/dev/null
	echo "QUICK=${QUICK:-0} TP_CALLS=$TP_CALLS CG_N1=$CG_N1 CG_N2=$CG_N2 CG_RATE=$CG_RATE WORKERS=$WORKERS KAM_MM='$KAM_MM' ports $PPORT/$SPORT/$UPORT"
} | tee "$OUT/info.txt"
printf 'workload\tproxy\trate\tper_cpu_s\tper_cpu_s_ns\tir_per_call\tok\tfailed\tretrans\telapsed\tcpu_s\tcalib\tcg_n1\tcg_n2\tcg_ir1\tcg_ir2\tcg_failed1\tcg_failed2\tcg_retrans1\tcg_retrans2\tir_per_call_all\tproxy_udp_drops\n' > "$SUMMARY"

for proxy in $PROXIES; do
	throughput "$proxy"
	CG_IR1=- CG_IR2=- CG_PER=- CG_PER_ALL=- CG_F1=- CG_F2=- CG_R1=- CG_R2=- CG_FILE1="" CG_FILE2=""
	[ "$CALLGRIND" = 1 ] && callgrind "$proxy"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$BNAME" "$proxy" "$TP_RATE" "$TP_PER_CPU" \
		"$TP_PER_CPU_NS" "$CG_PER" "$TP_OK" "$TP_FAILED" "$TP_RETRANS" "$TP_ELAPSED" "$TP_CPU" "$TP_CALIB" \
		"$CG_N1" "$CG_N2" "$CG_IR1" "$CG_IR2" "$CG_F1" "$CG_F2" "$CG_R1" "$CG_R2" "$CG_PER_ALL" "$TP_DROPS" >> "$SUMMARY"
	if [ "$CALLGRIND" = 1 ] && [ -f "$CG_FILE1" ] && [ -f "$CG_FILE2" ]; then
		for mode in inclusive self; do
			python3 "$HERE/tools/b_stats.py" perfn "$CG_FILE1" "$CG_FILE2" "$CG_N1" "$CG_N2" $mode 60 \
				> "$OUT/b-$proxy/per-call-$mode.txt" 2>&1
		done
		callgrind_annotate --auto=no --inclusive=yes "$CG_FILE2" 2>/dev/null | head -70 > "$OUT/b-$proxy/annotate-inclusive.txt"
		callgrind_annotate --auto=no --threshold=100 "$CG_FILE2" 2>/dev/null | head -70 > "$OUT/b-$proxy/annotate-self.txt"
	fi
done

echo
python3 "$HERE/tools/b_stats.py" report "$SUMMARY" | tee "$OUT/report.md"
[ "$CALLGRIND" = 1 ] && echo "per-call cost by function (N2 run minus N1 run): $OUT/b-*/per-call-{inclusive,self}.txt"
log "results in $OUT"
fail_summary || exit 1
