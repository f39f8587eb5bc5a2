#!/bin/bash
# Workload C (the Kamailio baseline's C register): REGISTER saved in the location table, at sipd
# and at Kamailio, one after the other in one run, with the same Lua scripts; with and without
# digest authentication.
#
# Usage: benches/load/c.sh [WORKLOAD...]     (default: c_register c_auth)
#   c_register  lua/c_registrar.lua (the baseline's, unchanged): REGISTER -> save("location");
#               sipp/c_register.xml (the baseline's register.xml): one REGISTER, 200; a fresh AOR
#               per REGISTER (users u000001... from a generated CSV)
#   c_auth      lua/c_registrar_auth.lua: auth_check(fhost, "subscriber", 1) before save, else
#               auth_challenge; sipp/c_register_auth.xml: REGISTER, 401, REGISTER with digest
#               credentials (sipp's [authentication]), 200. One registration = 2 REGISTERs; the
#               subscriber table (SQLite, Kamailio's schema, plain passwords) holds every user.
#
# For each workload and proxy (sipd release build with --workers 1, then Kamailio 5.6 + app_lua,
# usrloc db_mode 0 / hash_size 12, children=1, -x tlsf -X tlsf, kamailio/c_lua.cfg):
#   1. throughput (THROUGHPUT=1): closed loop `sipp -r 100000 -rp 1000 -l 100 -m $TP_REGS`:
#      registrations per second and per CPU-second of the proxy (utime+stime, /proc/PID/stat).
#   2. instructions per registration: valgrind --tool=callgrind, sipd --workers 1 / Kamailio -n 1,
#      counters zeroed with callgrind_control -z once the proxy listens, CG_N1 and CG_N2
#      registrations at CG_RATE/s in two separate runs, each against a fresh proxy and a fresh copy
#      of the database; Ir per registration = (Ir(N2) - Ir(N1)) / (N2 - N1) in the busiest
#      process (Kamailio's SIP worker; sipd is one process). c_auth: also per REGISTER (/2).
# Then prints the table with sipd/Kamailio ratios (the issue's goal: sipd <= 0.5x Kamailio-tlsf).
#
# Env knobs:
#   QUICK=1           short runs (TP_REGS=5000, CG_N1=100, CG_N2=400, CG_RATE=50): a few minutes
#   TP_REGS=20000     registrations per throughput run (the baseline's C register sat runs)
#   CG_N1=200 CG_N2=1000 CG_RATE=100
#   THROUGHPUT=1 CALLGRIND=1 (0 skips either)   PROXIES="sipd kamailio"   WORKERS=1
#   SIPD=path         sipd binary (default: cargo build --release -p sipd with CARGO_TARGET_DIR,
#                     default /work/target-c, then $CARGO_TARGET_DIR/release/sipd)
#   SIPD_DB_MODE=0    [modparam.usrloc] db_mode for sipd (Kamailio runs db_mode 0: memory only;
#                     sipd's 2 = write-back to SQLite from another thread)
#   SIPD_DB_URL=redis://127.0.0.1:6390/0   sipd's [db] url instead of the run's SQLite copy (a
#                     redis-server you started on loopback; FLUSHDB before each sipd start).
#                     Only sipd's instructions are counted, not redis-server's.
#   OUT=dir (default benches/load/results/c-<ts>)   SIPD_LOG=warn
#   PPORT=28160 SPORT=28161   proxy and sipp ports (127.0.0.1 only; run.sh/b.sh use others)
#
# Only 127.0.0.1. Every sipp run is bounded by -m, -timeout and timeout(1); proxies run in the
# foreground as our children and are stopped by PID. Nothing is killed by name.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TS=$(date +%Y%m%d-%H%M%S)
OUT=$(abs_dir "${OUT:-$HERE/results/c-$TS}") || die "cannot create OUT=${OUT:-}"
if [ "${QUICK:-0}" = 1 ]; then
	TP_REGS=${TP_REGS:-5000}; CG_N1=${CG_N1:-100}; CG_N2=${CG_N2:-400}; CG_RATE=${CG_RATE:-50}
else
	TP_REGS=${TP_REGS:-20000}; CG_N1=${CG_N1:-200}; CG_N2=${CG_N2:-1000}; CG_RATE=${CG_RATE:-100}
fi
WORKLOADS=${*:-"c_register c_auth"}
WORKERS=${WORKERS:-1}
PROXIES=${PROXIES:-"sipd kamailio"}
THROUGHPUT=${THROUGHPUT:-1}
CALLGRIND=${CALLGRIND:-1}
PPORT=${PPORT:-28160}
SPORT=${SPORT:-28161}
CPORT=5070   # the Contact port in the REGISTERs (nobody listens there: only saved)
SIPD_LOG=${SIPD_LOG:-warn}
SIPD_DB_MODE=${SIPD_DB_MODE:-0}
KAM_MM=${KAM_MM:-"-x tlsf -X tlsf"}
CLK=$(getconf CLK_TCK)
SUMMARY=$OUT/summary.tsv
SQL_DIR=/usr/share/kamailio/db_sqlite
PPID_=""
UASPID=""

need sipp "apt-get install sip-tester"
need python3 "apt-get install python3"
need ss "apt-get install iproute2"
need sqlite3 "apt-get install sqlite3"
case " $PROXIES " in *" kamailio "*)
	need kamailio "apt-get install kamailio kamailio-lua-modules kamailio-sqlite-modules"
	[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/app_lua.so ] || die "app_lua missing (apt-get install kamailio-lua-modules)"
	[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] || die "db_sqlite missing (apt-get install kamailio-sqlite-modules)";;
esac
[ -f "$SQL_DIR/auth_db-create.sql" ] || die "no Kamailio SQLite schema in $SQL_DIR (apt-get install kamailio-sqlite-modules)"
[ "$CALLGRIND" = 1 ] && need valgrind "apt-get install valgrind"
for w in $WORKLOADS; do case $w in c_register|c_auth) ;; *) die "unknown workload $w (c_register, c_auth)";; esac; done

SIPD_GIVEN=${SIPD:+yes}
case " $PROXIES " in *" sipd "*)
	if [ -z "${SIPD:-}" ]; then
		export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-c}
		log "building sipd (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
		( cd "$ROOT" && cargo build --release -q -p sipd ) || die "cargo build --release -p sipd failed"
		SIPD=$CARGO_TARGET_DIR/release/sipd
	fi
	[ -x "$SIPD" ] || die "no sipd binary at $SIPD";;
esac
for p in $PPORT $SPORT; do port_busy $p && die "UDP port $p on this machine is busy: set PPORT/SPORT"; done
mkdir -p "$OUT/kamailio-run"

# users.csv (sipp -inf, SEQUENTIAL: user;password) and a pristine database with the subscribers,
# in Kamailio's schema (sipd reads Kamailio-shaped tables)
NUSERS=$(( TP_REGS > CG_N2 ? TP_REGS : CG_N2 ))
python3 - "$OUT" "$NUSERS" <<'EOF'
import hashlib, sys
out, n = sys.argv[1], int(sys.argv[2])
md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
with open(out + "/users.csv", "w") as csv, open(out + "/users.sql", "w") as sql:
    csv.write("SEQUENTIAL\n")
    sql.write("BEGIN;\n")
    for i in range(1, n + 1):
        u, p, d = "u%06d" % i, "pw%06d" % i, "127.0.0.1"
        csv.write("%s;%s\n" % (u, p))
        sql.write("INSERT INTO subscriber(username,domain,password,ha1,ha1b) VALUES('%s','%s','%s','%s','%s');\n"
                  % (u, d, p, md5("%s:%s:%s" % (u, d, p)), md5("%s@%s:%s:%s" % (u, d, d, p))))
    sql.write("COMMIT;\n")
EOF
rm -f "$OUT/pristine.db"
cat "$SQL_DIR/standard-create.sql" "$SQL_DIR/auth_db-create.sql" "$SQL_DIR/usrloc-create.sql" \
	"$OUT/users.sql" | sqlite3 "$OUT/pristine.db" || die "cannot create the subscriber database"

# cfg for sipd, per workload: the same modules/modparams as kamailio/c_lua.cfg
sipd_toml() {  # <workload> <dir> <db>
	local script=$HERE/lua/c_registrar.lua mods='"sl", "tm", "maxfwd", "registrar"' auth=""
	if [ "$1" = c_auth ]; then
		script=$HERE/lua/c_registrar_auth.lua
		mods='"sl", "tm", "maxfwd", "kx", "registrar", "auth", "auth_db"'
		auth=$'[modparam.auth_db]\ncalculate_ha1 = 1\npassword_column = "password"\nuse_domain = 0\n'
	fi
	cat > "$2/sipd.toml" <<EOF
# generated by benches/load/c.sh ($1)
listen = ["udp:127.0.0.1:$PPORT"]
workers = 1
log_level = "$SIPD_LOG"
cfgengine = "lua"
script = "$script"
modules = [$mods]
[db]
url = "${SIPD_DB_URL:-sqlite://$3}"
[modparam.usrloc]
db_mode = $SIPD_DB_MODE
hash_size = 12
[modparam.registrar]
default_expires = 3600
$auth
EOF
}

# proxy_start <proxy> <workload> <workers> <dir> [wrapper...]
proxy_start() {
	local proxy=$1 wl=$2 n=$3 d=$4 i settle script=$HERE/lua/c_registrar.lua; shift 4
	port_busy $PPORT && die "port $PPORT busy before starting $proxy"
	cp "$OUT/pristine.db" "$d/db.sqlite"
	[ "$wl" = c_auth ] && script=$HERE/lua/c_registrar_auth.lua
	case $proxy in
		sipd)
			sipd_toml "$wl" "$d" "$d/db.sqlite"
			if [ -n "${SIPD_DB_URL:-}" ]; then
				redis-cli -u "$SIPD_DB_URL" FLUSHDB >/dev/null || die "redis-cli FLUSHDB on $SIPD_DB_URL"
			fi
			echo "$* $SIPD run --config $d/sipd.toml --workers $n" > "$d/proxy_cmd.txt"
			"$@" "$SIPD" run --config "$d/sipd.toml" --workers "$n" > "$d/proxy.log" 2>&1 &
			settle=0.3;;
		kamailio)
			local auth=()
			[ "$wl" = c_auth ] && auth=(-A WITH_AUTH -A "DBURL=\"sqlite://$d/db.sqlite\"")
			echo "$* kamailio -f $HERE/kamailio/c_lua.cfg -DD -E -m 512 -M 16 -n $n -A BENCH_CHILDREN=$n -l udp:127.0.0.1:$PPORT -Y $OUT/kamailio-run $KAM_MM -A 'LUA_SCRIPT=\"$script\"' ${auth[*]}" > "$d/proxy_cmd.txt"
			# shellcheck disable=SC2086
			"$@" kamailio -f "$HERE/kamailio/c_lua.cfg" -DD -E -m 512 -M 16 -n "$n" -A BENCH_CHILDREN="$n" \
				-l "udp:127.0.0.1:$PPORT" -Y "$OUT/kamailio-run" $KAM_MM -A "LUA_SCRIPT=\"$script\"" "${auth[@]}" \
				> "$d/proxy.log" 2>&1 &
			settle=1;;
	esac
	PPID_=$!
	for i in $(seq 1 600); do
		port_busy $PPORT && break
		kill -0 "$PPID_" 2>/dev/null || { tail -20 "$d/proxy.log"; die "$proxy died at startup"; }
		sleep 0.1
	done
	port_busy $PPORT || die "$proxy did not bind $PPORT"
	[ $# -gt 0 ] && settle=3   # under valgrind: let the workers finish loading the script
	sleep $settle
}
trap 'proxy_stop' EXIT INT TERM

# uac_run <workload> <dir> <timeout_s> <sipp rate args...>
uac_run() {
	local wl=$1 d=$2 t=$3 xml=$HERE/sipp/c_register.xml; shift 3
	[ "$wl" = c_auth ] && xml=$HERE/sipp/c_register_auth.xml
	local args=(-i 127.0.0.1 -p "$SPORT" -nostdin -timeout "${t}s" -trace_stat -stf stat.csv -fd 1
		-trace_err -error_file errors.log -sf "$xml" -inf "$OUT/users.csv" -key pfx r -key cport "$CPORT" "$@")
	echo "sipp 127.0.0.1:$PPORT ${args[*]}" > "$d/cmd.txt"
	( cd "$d" && timeout -k 5 $((t + 10)) sipp "127.0.0.1:$PPORT" "${args[@]}" > sipp.out 2>&1 )
}



# throughput <proxy> <workload>: sets TP_*
throughput() {
	local proxy=$1 wl=$2 d=$OUT/$2-$1/throughput k0 k1
	mkdir -p "$d"
	TP_CALIB=$(calib)
	proxy_start "$proxy" "$wl" "$WORKERS" "$d"
	k0=$(proxy_ticks)
	uac_run "$wl" "$d" 90 -r 100000 -rp 1000 -l 100 -m "$TP_REGS"
	sleep 0.3
	k1=$(proxy_ticks)
	proxy_stop
	read -r TP_OK TP_FAILED TP_RETRANS TP_ELAPSED TP_RATE < <(python3 "$HERE/tools/b_stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	TP_CPU=$(python3 -c "print('%.2f' % (($k1 - $k0) / $CLK))")
	TP_PER_CPU=$(python3 -c "c=($k1 - $k0) / $CLK; print('%.0f' % ($TP_OK / c) if c > 0 else 'nan')")
	log "$wl @ $proxy: $TP_OK ok, $TP_FAILED failed, $TP_RETRANS retrans in ${TP_ELAPSED}s = $TP_RATE registrations/s; proxy CPU ${TP_CPU}s = $TP_PER_CPU registrations/CPU-s (calib $TP_CALIB)"
	failure_note "$d"
}

# cg_one <proxy> <workload> <n> <dir>: sets CG1_IR CG1_ALL CG1_FAILED CG1_FILE
cg_one() {
	local proxy=$1 wl=$2 n=$3 d=$4 pid t
	rm -rf "$d"; mkdir -p "$d"
	t=$((n / CG_RATE + 60))
	proxy_start "$proxy" "$wl" 1 "$d" valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" --log-file="$d/vg.%p.log"
	for pid in $(proxy_pids); do timeout 30 callgrind_control -z "$pid" > /dev/null 2>&1 || log "callgrind_control -z $pid failed"; done
	uac_run "$wl" "$d" "$t" -r "$CG_RATE" -rp 1000 -m "$n"
	sleep 0.5
	proxy_stop
	read -r CG1_IR CG1_ALL CG1_FILE < <(python3 "$HERE/tools/b_stats.py" cg "$d")
	read -r _ CG1_FAILED _ _ _ < <(python3 "$HERE/tools/b_stats.py" sipp "$d/stat.csv" 2>/dev/null || echo "0 ? ? 0 0")
	failure_note "$d"
}

{
	echo "date: $(date -u)"
	echo "kernel: $(uname -r); cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
	[ -n "${SIPD:-}" ] && echo "sipd: $SIPD ($("$SIPD" --version 2>&1)); git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- sipd kemi-runtime modules 2>/dev/null || echo ' + uncommitted changes')${SIPD_GIVEN:+ (SIPD given)}; usrloc db_mode $SIPD_DB_MODE; db ${SIPD_DB_URL:-sqlite}"
	command -v kamailio >/dev/null && kamailio -v 2>&1 | head -1
	echo "sipp: $(sipp -v 2>&1 | grep -m1 SIPp)"
	valgrind --version 2>/dev/null
	echo "WORKLOADS='$WORKLOADS' QUICK=${QUICK:-0} TP_REGS=$TP_REGS CG_N1=$CG_N1 CG_N2=$CG_N2 CG_RATE=$CG_RATE WORKERS=$WORKERS KAM_MM='$KAM_MM' ports $PPORT/$SPORT"
} | tee "$OUT/info.txt"
printf 'workload\tproxy\trate\tper_cpu_s\tir_per_reg\tok\tfailed\tretrans\tcpu_s\tcalib\tcg_n1\tcg_n2\tcg_ir1\tcg_ir2\tcg_failed1\tcg_failed2\tir_per_reg_all\n' > "$SUMMARY"

for wl in $WORKLOADS; do
	for proxy in $PROXIES; do
		TP_RATE=- TP_PER_CPU=- TP_OK=- TP_FAILED=- TP_RETRANS=- TP_CPU=- TP_CALIB=-
		[ "$THROUGHPUT" = 1 ] && throughput "$proxy" "$wl"
		CG_PER=- CG_PER_ALL=- CG_IR1=- CG_IR2=- CG_F1=- CG_F2=-
		if [ "$CALLGRIND" = 1 ]; then
			d=$OUT/$wl-$proxy/callgrind
			cg_one "$proxy" "$wl" "$CG_N1" "$d/n$CG_N1"; CG_IR1=$CG1_IR CG_ALL1=$CG1_ALL CG_F1=$CG1_FAILED F1=$CG1_FILE
			cg_one "$proxy" "$wl" "$CG_N2" "$d/n$CG_N2"; CG_IR2=$CG1_IR CG_ALL2=$CG1_ALL CG_F2=$CG1_FAILED F2=$CG1_FILE
			CG_PER=$(python3 -c "print('%.0f' % (($CG_IR2 - $CG_IR1) / ($CG_N2 - $CG_N1)))" 2>/dev/null || echo -)
			CG_PER_ALL=$(python3 -c "print('%.0f' % (($CG_ALL2 - $CG_ALL1) / ($CG_N2 - $CG_N1)))" 2>/dev/null || echo -)
			log "$wl @ $proxy: callgrind Ir($CG_N1)=$CG_IR1 Ir($CG_N2)=$CG_IR2 (failed N1 $CG_F1, N2 $CG_F2) => $CG_PER Ir/registration in the busiest process"
			if [ -f "$F1" ] && [ -f "$F2" ]; then
				for mode in inclusive self; do
					python3 "$HERE/tools/b_stats.py" perfn "$F1" "$F2" "$CG_N1" "$CG_N2" $mode 60 > "$OUT/$wl-$proxy/per-reg-$mode.txt" 2>&1
				done
			fi
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$proxy" "$TP_RATE" "$TP_PER_CPU" \
			"$CG_PER" "$TP_OK" "$TP_FAILED" "$TP_RETRANS" "$TP_CPU" "$TP_CALIB" "$CG_N1" "$CG_N2" "$CG_IR1" "$CG_IR2" \
			"$CG_F1" "$CG_F2" "$CG_PER_ALL" >> "$SUMMARY"
	done
done

echo
python3 - "$SUMMARY" <<'EOF' | tee "$OUT/report.md"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def num(v):
    try: return float(v)
    except (TypeError, ValueError): return None
def fmt(v): return "-" if v is None else "{:,.0f}".format(v)
def ratio(a, b): return "-" if a is None or not b else "%.2f" % (a / b)
print("| workload | metric | sipd | Kamailio (tlsf) | sipd / Kamailio |")
print("|---|---|---|---|---|")
for wl in dict.fromkeys(r["workload"] for r in rows):
    by = {r["proxy"]: r for r in rows if r["workload"] == wl}
    s, k = by.get("sipd", {}), by.get("kamailio", {})
    per = 2.0 if wl == "c_auth" else 1.0
    lines = [("registrations/s (closed loop, <= 100 outstanding)", "rate", 1),
             ("registrations per proxy CPU-s", "per_cpu_s", 1),
             ("**instructions per registration** (callgrind)", "ir_per_reg", 1)]
    if per == 2.0:
        lines.append(("instructions per REGISTER (/2: challenged + authenticated)", "ir_per_reg", 2))
    lines.append(("instructions per registration, all processes", "ir_per_reg_all", 1))
    for title, key, div in lines:
        a, b = num(s.get(key)), num(k.get(key))
        a = None if a is None else a / div
        b = None if b is None else b / div
        print("| %s | %s | %s | %s | %s |" % (wl, title, fmt(a), fmt(b), ratio(a, b)))
print()
for r in rows:
    print("  %-10s %-8s throughput ok=%s failed=%s retrans=%s cpu_s=%s calib=%s | callgrind n1=%s n2=%s Ir=%s/%s failed=%s/%s"
          % (r["workload"], r["proxy"], r["ok"], r["failed"], r["retrans"], r["cpu_s"], r["calib"], r["cg_n1"], r["cg_n2"],
             r["cg_ir1"], r["cg_ir2"], r["cg_failed1"], r["cg_failed2"]))
EOF
log "results in $OUT"
