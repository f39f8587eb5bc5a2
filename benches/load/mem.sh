#!/bin/bash
# Memory under workload B (the stateful proxy of b.sh: INVITE/100/180/200/ACK/BYE/200 through
# t_relay with record-routing, lua/b_proxy.lua, sipp/b_uac.xml + sipp/b_uas.xml): the proxy's
# memory when idle, after N1 calls, after N2 calls in all, and while it sits idle afterwards,
# for sipd and for Kamailio (5.6 + app_lua, started as b.sh starts it: -x tlsf -X tlsf,
# -m 512 -M 16), one after the other.
#
# Usage: benches/load/mem.sh
#
# For each proxy: start it (sipd --workers $WORKERS / Kamailio -n $WORKERS), let it settle 2 s,
# read its memory ("idle"); a sipp UAS (-m N2) and a closed-loop UAC
# `sipp -sf b_uac.xml -r 100000 -rp 1000 -l 100 -m N1` (at most 100 calls outstanding, as fast
# as the proxy answers); read the memory ("after N1"); a second UAC for N2-N1 calls; read it
# ("after N2"); then read it every 10 s for IDLE_S seconds with no traffic ("+10 s" ... ).
# Memory is read from /proc: VmRSS of the main process, and the PSS summed over the proxy and
# its children (smaps_rollup; Kamailio's processes share its pools, so their RSS values would
# count the shared pages once per process, PSS divides them). sipd is one process: RSS = PSS.
#
# Env knobs:
#   N1=20000 N2=100000   calls before the first and second reading (N2 counts all calls)
#   IDLE_S=60            seconds of idle readings after the traffic
#   WORKERS=1            sipd --workers, Kamailio -n
#   PROXIES="sipd kamailio"
#   SIPD=path            sipd binary (default: cargo build --release -p sipd with
#                        CARGO_TARGET_DIR, default /work/target-perf, copied to $OUT so a rebuild
#                        during the run cannot swap it); SIPD_ARGS="..." more `sipd run` arguments
#   SIPD_ENV="..."       environment for sipd (e.g. "MALLOC_ARENA_MAX=1")
#   MALLOC=glibc         sipd's allocator: glibc (as built: glibc malloc, trimmed by sipd's
#                        housekeeping, sipd/src/tm/trim.rs); notrim (glibc malloc, sipd's
#                        malloc_trim calls made no-ops by an LD_PRELOAD shim compiled here with cc);
#                        jemalloc (Debian's libjemalloc2 through LD_PRELOAD, its default decay)
#   OUT=dir              default benches/load/results/mem-<ts>
#   PPORT=27260 SPORT=27261 UPORT=27270   127.0.0.1 ports (b.sh uses 2716x, run.sh 250xx)
#   SIPD_LOG=warn
#
# Only 127.0.0.1. Every sipp run is bounded by -m, -timeout and timeout(1); proxies run as our
# children and are stopped by PID. Nothing is killed by name.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TS=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$HERE/results/mem-$TS}
case $OUT in /*) ;; *) OUT=$PWD/$OUT;; esac
N1=${N1:-20000}
N2=${N2:-100000}
IDLE_S=${IDLE_S:-60}
WORKERS=${WORKERS:-1}
PROXIES=${PROXIES:-"sipd kamailio"}
PPORT=${PPORT:-27260}
SPORT=${SPORT:-27261}
UPORT=${UPORT:-27270}
SIPD_LOG=${SIPD_LOG:-warn}
SIPD_ARGS=${SIPD_ARGS:-}
SIPD_ENV=${SIPD_ENV:-}
KAM_MM=${KAM_MM:-"-x tlsf -X tlsf"}
MALLOC=${MALLOC:-glibc}
SCRIPT=$HERE/lua/b_proxy.lua
UAC_XML=$HERE/sipp/b_uac.xml
UAS_XML=$HERE/sipp/b_uas.xml
export BENCH_DST="sip:127.0.0.1:$UPORT"   # read by b_proxy.lua in both proxies
PPID_=""
UASPID=""
[ "$N2" -gt "$N1" ] || die "N2 ($N2) must be larger than N1 ($N1)"

need sipp "apt-get install sip-tester"
need ss "apt-get install iproute2"
need python3 "apt-get install python3"
case " $PROXIES " in *" kamailio "*)
	need kamailio "apt-get install kamailio kamailio-lua-modules";;
esac
mkdir -p "$OUT/kamailio-run"

SIPD_GIVEN=${SIPD:+yes}
case " $PROXIES " in *" sipd "*)
	if [ -z "${SIPD:-}" ]; then
		export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-perf}
		log "building sipd (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
		( cd "$ROOT" && cargo build --release -q -p sipd ) || die "cargo build --release -p sipd failed"
		SIPD=$CARGO_TARGET_DIR/release/sipd
	fi
	[ -x "$SIPD" ] || die "no sipd binary at $SIPD"
	cp "$SIPD" "$OUT/sipd-bin" || die "cannot copy $SIPD"
	SIPD=$OUT/sipd-bin;;
esac
case $MALLOC in
	glibc) ;;
	notrim)
		need cc "apt-get install gcc"
		echo 'int malloc_trim(unsigned long pad) { (void)pad; return 0; }' > "$OUT/notrim.c"
		cc -shared -fPIC -O2 -o "$OUT/notrim.so" "$OUT/notrim.c" || die "cannot build the notrim shim"
		SIPD_ENV="LD_PRELOAD=$OUT/notrim.so $SIPD_ENV";;
	jemalloc)
		JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
		[ -e "$JE" ] || die "$JE missing (apt-get install libjemalloc2)"
		SIPD_ENV="LD_PRELOAD=$JE $SIPD_ENV";;
	*) die "MALLOC must be glibc, notrim or jemalloc";;
esac
for p in $PPORT $SPORT $UPORT; do port_busy "$p" && die "UDP port $p is busy: set PPORT/SPORT/UPORT"; done

trap 'uas_stop; proxy_stop' EXIT INT TERM

# kB: VmRSS of the main process, then PSS summed over it and its children
mem_kb() {
	local rss pss=0 p v
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PPID_/status" 2>/dev/null)
	for p in $(proxy_pids); do
		v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		pss=$((pss + ${v:-0}))
	done
	echo "${rss:-0} $pss"
}

proxy_start() {
	local proxy=$1 plog=$2 i
	case $proxy in
		sipd)
			echo "BENCH_DST=$BENCH_DST $SIPD_ENV $SIPD run --listen udp:127.0.0.1:$PPORT --script $SCRIPT --workers $WORKERS --log-level $SIPD_LOG $SIPD_ARGS" > "$OUT/$proxy-cmd.txt"
			# shellcheck disable=SC2086
			env $SIPD_ENV "$SIPD" run --listen "udp:127.0.0.1:$PPORT" --script "$SCRIPT" --workers "$WORKERS" \
				--log-level "$SIPD_LOG" $SIPD_ARGS > "$plog" 2>&1 &
			;;
		kamailio)
			echo "BENCH_DST=$BENCH_DST kamailio -f $HERE/kamailio/b_lua.cfg -DD -E -m 512 -M 16 -n $WORKERS -A BENCH_CHILDREN=$WORKERS -l udp:127.0.0.1:$PPORT -Y $OUT/kamailio-run $KAM_MM -A 'LUA_SCRIPT=\"$SCRIPT\"'" > "$OUT/$proxy-cmd.txt"
			# shellcheck disable=SC2086
			kamailio -f "$HERE/kamailio/b_lua.cfg" -DD -E -m 512 -M 16 -n "$WORKERS" -A BENCH_CHILDREN="$WORKERS" \
				-l "udp:127.0.0.1:$PPORT" -Y "$OUT/kamailio-run" $KAM_MM -A "LUA_SCRIPT=\"$SCRIPT\"" > "$plog" 2>&1 &
			;;
	esac
	PPID_=$!
	for i in $(seq 1 300); do
		port_busy "$PPORT" && break
		kill -0 "$PPID_" 2>/dev/null || { tail -20 "$plog"; die "$proxy died at startup"; }
		sleep 0.1
	done
	port_busy "$PPORT" || die "$proxy did not bind $PPORT"
	sleep 2
}

# uac <dir> <calls>: one closed-loop UAC run, bounded by -m, -timeout and timeout(1)
uac() {
	local d=$1 m=$2 t
	t=$((m / 500 + 60))
	mkdir -p "$d"
	( cd "$d" && timeout -k 5 $((t + 10)) sipp "127.0.0.1:$PPORT" -i 127.0.0.1 -p "$SPORT" -nostdin \
		-timeout "${t}s" -trace_stat -stf stat.csv -fd 1 -trace_err -error_file errors.log \
		-sf "$UAC_XML" -r 100000 -rp 1000 -l 100 -m "$m" > sipp.out 2>&1 )
	read -r OK FAILED _ ELAPSED RATE < <(python3 "$HERE/tools/b_stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	log "  $m calls: $OK ok, $FAILED failed in ${ELAPSED}s ($RATE calls/s)"
}

printf 'proxy\tpoint\tcalls\trss_kb\tpss_kb\tok\tfailed\tcalls_per_s\n' > "$OUT/mem.tsv"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$OUT/mem.tsv"; }
{
	echo "date: $(date -u)"
	echo "kernel: $(uname -r); cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
	[ -n "${SIPD:-}" ] && echo "sipd: ${SIPD_GIVEN:+given }$SIPD ($("$SIPD" --version 2>&1)); git $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- sipd kemi-runtime modules 2>/dev/null || echo ' + uncommitted changes'); SIPD_ENV='$SIPD_ENV' SIPD_ARGS='$SIPD_ARGS'"
	command -v kamailio >/dev/null && kamailio -v 2>&1 | head -1
	echo "MALLOC=$MALLOC N1=$N1 N2=$N2 IDLE_S=$IDLE_S WORKERS=$WORKERS KAM_MM='$KAM_MM' ports $PPORT/$SPORT/$UPORT"
} | tee "$OUT/info.txt"

for proxy in $PROXIES; do
	d=$OUT/$proxy
	mkdir -p "$d"
	log "$proxy: starting"
	proxy_start "$proxy" "$d/proxy.log"
	read -r rss pss < <(mem_kb); row "$proxy" idle 0 "$rss" "$pss" - - -
	log "$proxy idle: RSS ${rss} kB, PSS ${pss} kB"
	( cd "$d" && exec timeout -k 5 $((N2 / 500 + 200)) sipp -i 127.0.0.1 -p "$UPORT" -nostdin \
		-timeout "$((N2 / 500 + 180))s" -trace_err -error_file uas_errors.log -sf "$UAS_XML" -m "$N2" > uas.out 2>&1 ) &
	UASPID=$!
	for _ in $(seq 1 50); do port_busy "$UPORT" && break; sleep 0.1; done
	uac "$d/uac1" "$N1"
	read -r rss pss < <(mem_kb); row "$proxy" "after_N1" "$N1" "$rss" "$pss" "$OK" "$FAILED" "$RATE"
	log "$proxy after $N1 calls: RSS ${rss} kB, PSS ${pss} kB"
	uac "$d/uac2" $((N2 - N1))
	read -r rss pss < <(mem_kb); row "$proxy" "after_N2" "$N2" "$rss" "$pss" "$OK" "$FAILED" "$RATE"
	log "$proxy after $N2 calls: RSS ${rss} kB, PSS ${pss} kB"
	uas_stop
	for s in $(seq 10 10 "$IDLE_S"); do
		sleep 10
		read -r rss pss < <(mem_kb); row "$proxy" "idle_${s}s" "$N2" "$rss" "$pss" - - -
		log "$proxy ${s} s after the traffic: RSS ${rss} kB, PSS ${pss} kB"
	done
	proxy_stop
	failure_note "$d"; failure_note "$d/uac1"; failure_note "$d/uac2"
done

echo
python3 - "$OUT/mem.tsv" <<'EOF' | tee "$OUT/report.md"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
proxies = []
for r in rows:
    if r["proxy"] not in proxies:
        proxies.append(r["proxy"])
print("| point | " + " | ".join(f"{p} RSS MB | {p} PSS MB" for p in proxies) + " |")
print("|---|" + "---:|---:|" * len(proxies))
points = []
for r in rows:
    if r["point"] not in points:
        points.append(r["point"])
for pt in points:
    cells = []
    for p in proxies:
        r = next((r for r in rows if r["proxy"] == p and r["point"] == pt), None)
        cells += [f"{int(r['rss_kb']) / 1024:.1f}", f"{int(r['pss_kb']) / 1024:.1f}"] if r else ["-", "-"]
    print(f"| {pt} | " + " | ".join(cells) + " |")
for p in proxies:
    idle = next(int(r["pss_kb"]) for r in rows if r["proxy"] == p and r["point"] == "idle")
    last = [r for r in rows if r["proxy"] == p][-1]
    fails = [f"{r['point']}: {r['ok']} ok / {r['failed']} failed at {r['calls_per_s']} calls/s" for r in rows if r["proxy"] == p and r["ok"] != "-"]
    print(f"\n{p}: last reading ({last['point']}) {int(last['pss_kb']) / idle:.2f}x idle PSS; calls {'; '.join(fails)}")
EOF
log "results in $OUT"
