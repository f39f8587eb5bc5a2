#!/bin/bash
# Helpers shared by run.sh (workloads A) and b.sh (workload B); sourced, not run.
# They expect PPID_ (the proxy's pid), PPORT and UASPID from the sourcing script.

log() { echo "[$(date +%H:%M:%S)] $*"; }
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

port_busy() { ss -Hlun "sport = :$1" | grep -q .; }

need() { command -v "$1" >/dev/null || die "$1 not found ($2)"; }

proxy_pids() {
	local p line rest
	echo "$PPID_"
	for p in /proc/[0-9]*; do
		read -r line 2>/dev/null < "$p/stat" || continue
		rest=${line##*) }
		set -- $rest
		[ "$2" = "$PPID_" ] && echo "${p#/proc/}"
	done
}

proxy_ns() {
	local t=0 p f a
	for p in $(proxy_pids); do
		for f in /proc/$p/task/*/schedstat; do
			read -r a _ 2>/dev/null < "$f" || continue
			t=$((t + a))
		done
	done
	echo $t
}

proxy_stop() {
	[ -n "$PPID_" ] || return 0
	local kids i
	kids=$(proxy_pids | tail -n +2)
	kill -TERM "$PPID_" 2>/dev/null
	for i in $(seq 1 150); do kill -0 "$PPID_" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$PPID_" 2>/dev/null && kill -KILL "$PPID_" 2>/dev/null
	wait "$PPID_" 2>/dev/null
	for i in $kids; do [ -d "/proc/$i" ] && kill -KILL "$i" 2>/dev/null; done
	PPID_=""
	for i in $(seq 1 50); do port_busy $PPORT || break; sleep 0.1; done
}

calib() {
	python3 -c "
import time
t=time.time(); n=0
while time.time()-t<1.0:
    for _ in range(20000): n+=1
print('%.1f' % (n/1e6/(time.time()-t)))"
}

uas_stop() { [ -n "$UASPID" ] && { kill -TERM "$UASPID" 2>/dev/null; wait "$UASPID" 2>/dev/null; }; UASPID=""; }

# utime+stime ticks of the proxy process (all its threads) and its direct children
proxy_ticks() {
	local t=0 p line rest
	for p in $(proxy_pids); do
		read -r line 2>/dev/null < "/proc/$p/stat" || continue
		rest=${line##*) }
		set -- $rest
		t=$((t + ${12} + ${13}))
	done
	echo $t
}

# failures of one run, for the log: sipp error-log lines and the proxy's warnings/errors
failure_note() {
	local d=$1 f
	for f in "$d"/*errors.log; do
		[ -s "$f" ] && log "  $(basename "$f"): $(grep -c . "$f") lines; first: $(grep -m1 -v '^\s*$' "$f" | cut -c1-200)"
	done
	# sipd logs at $SIPD_LOG (warn): every line counts; Kamailio (debug=1) prints its
	# "Listening on" banner, so only its ERROR/WARNING/CRITICAL lines count
	f=$(grep -cE 'ERROR|WARN|CRIT|error|warn|panic' "$d/proxy.log" 2>/dev/null)
	[ "${f:-0}" -gt 0 ] && log "  proxy.log: $f warning/error lines; first: $(grep -m1 -E 'ERROR|WARN|CRIT|error|warn|panic' "$d/proxy.log" | cut -c1-200)"
	return 0
}

# abs_dir <dir>: create <dir> and print its absolute path. Kamailio changes its working
# directory to / at startup, so a relative path handed to it (the relay script under OUT)
# would not open there: every call would fail.
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd); }

# Figures a run could not measure. check_* record them (and log at once); fail_summary,
# called after the report, prints them all and returns 1 so the script exits non-zero:
# a table with a 0 or a "-" where a measurement should be is a failed run, not a result.
FAILURES=()
fail() { log "FAILED: $*"; FAILURES+=("$*"); }

# check_positive <what> <value> <where to look>: <value> must be a number above 0
check_positive() {
	if [[ ! $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $2 =~ ^0*(\.0*)?$ ]]; then
		fail "$1 is '$2' (see $3)"
	fi
}

# check_calls <what> <ok> <expected> <where to look>: some calls must have succeeded; fewer
# than expected is logged (the figure is still taken), none at all is a failure
check_calls() {
	check_positive "$1: successful calls" "$2" "$4"
	if [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] && [ "$2" -lt "$3" ]; then
		log "WARNING: $1: only $2 of $3 calls succeeded (see $4)"
	fi
}

fail_summary() {
	[ ${#FAILURES[@]} -eq 0 ] && return 0
	{
		echo
		echo "$(basename "$0"): FAILED: ${#FAILURES[@]} figure(s) missing or zero; the table above is not a measurement:"
		printf '  - %s\n' "${FAILURES[@]}"
	} >&2
	return 1
}
