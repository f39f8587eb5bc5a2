#!/usr/bin/env python3
"""Helpers for b.sh (workload B), Python 3 stdlib only. Reuses tools/stats.py read-only.

  b_stats.py sipp STAT.csv               -> "successful failed retrans elapsed_s rate_per_s"
  b_stats.py cg DIR                      -> "top_process_Ir all_processes_Ir top_file"
  b_stats.py report SUMMARY.tsv          -> the side-by-side table, sipd vs Kamailio, with ratios
  b_stats.py perfn CG1 CG2 N1 N2 MODE K  -> per-call cost by function: (Ir(CG2)-Ir(CG1))/(N2-N1)
                                            from callgrind_annotate (MODE inclusive: per file:function;
                                            self: per function, inlined parts added up), top K
"""
import csv
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stats  # noqa: E402  (benches/load/tools/stats.py)

MSGS_PER_CALL = 6  # received by the proxy: INVITE, 180, 200, ACK, BYE, 200 (the 100 is absorbed)


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def report(path):
    rows = list(csv.DictReader(open(path), delimiter='\t'))
    by = {r['proxy']: r for r in rows}
    s, k = by.get('sipd', {}), by.get('kamailio', {})

    def fmt(v):
        return '-' if v is None else '{:,.0f}'.format(v)

    def ratio(a, b):
        return '-' if a is None or b is None or b == 0 else '%.2f' % (a / b)

    def per_msg(r):
        v = num(r.get('ir_per_call'))
        return None if v is None else v / MSGS_PER_CALL

    lines = [('calls/s (closed loop, at most 100 calls outstanding)', num(s.get('rate')), num(k.get('rate'))),
             ('calls per proxy CPU-s (utime+stime)', num(s.get('per_cpu_s')), num(k.get('per_cpu_s'))),
             ('calls per proxy CPU-s (schedstat ns)', num(s.get('per_cpu_s_ns')), num(k.get('per_cpu_s_ns'))),
             ('**instructions per call** (callgrind)', num(s.get('ir_per_call')), num(k.get('ir_per_call'))),
             ('instructions per received message (/6)', per_msg(s), per_msg(k)),
             ('instructions per call, all processes (Kamailio: + timer, main, ...)',
              num(s.get('ir_per_call_all')), num(k.get('ir_per_call_all')))]
    print('| metric | sipd | Kamailio | sipd / Kamailio |')
    print('|---|---|---|---|')
    for title, a, b in lines:
        print('| %s | %s | %s | %s |' % (title, fmt(a), fmt(b), ratio(a, b)))
    print()
    print('Run details (throughput: calls ok/failed/retransmissions, proxy CPU-s, calib; callgrind N1/N2 runs):')
    for r in rows:
        print('  %-8s throughput: ok=%s failed=%s retrans=%s elapsed=%ss cpu_s=%s calib=%s proxy_udp_drops=%s | callgrind: '
              'n1=%s n2=%s Ir(n1)=%s Ir(n2)=%s failed n1/n2=%s/%s retrans n1/n2=%s/%s' % (
                  r['proxy'], r['ok'], r['failed'], r['retrans'], r['elapsed'], r['cpu_s'], r['calib'], r.get('proxy_udp_drops'),
                  r['cg_n1'], r['cg_n2'], r['cg_ir1'], r['cg_ir2'], r['cg_failed1'], r['cg_failed2'],
                  r['cg_retrans1'], r['cg_retrans2']))


THREAD_ENTRY = {'clone', 'start_thread', '<std::sys::thread::unix::Thread>::new::thread_start',
                'core::ops::function::FnOnce::call_once{{vtable.shim}}'}
LINE = re.compile(r'^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$')


def annotate(f, mode):
    args = ['callgrind_annotate', '--auto=no', '--threshold=100']
    if mode == 'inclusive':
        args.append('--inclusive=yes')
    out = subprocess.run(args + [f], capture_output=True, text=True).stdout
    costs, started = {}, False
    for line in out.splitlines():
        if not started:
            started = line.strip().startswith('Ir') and 'file:function' in line
            continue
        m = LINE.match(line)
        if m:
            fn = m.group(2)
            if mode == 'self':
                # one row per function: add up the file:function rows that inlining splits it into
                fn = re.sub(r' \[[^]]*\]$', '', fn.split(':', 1)[-1])
            costs[fn] = costs.get(fn, 0) + int(m.group(1).replace(',', ''))
    return costs


def perfn(f1, f2, n1, n2, mode, k):
    a, b = annotate(f1, mode), annotate(f2, mode)
    n = float(int(n2) - int(n1))
    d = sorted(((b.get(fn, 0) - a.get(fn, 0)) / n, fn) for fn in set(a) | set(b))
    if mode == 'self':
        # the thread-entry frames on the stack when callgrind_control -z zeroed the counters carry
        # the whole thread's cost as "self" in callgrind_annotate: not real self cost
        d = [x for x in d if x[1] not in THREAD_ENTRY]
    d.reverse()
    print('# %s cost per call = (Ir in %s - Ir in %s) / %d' % (mode, os.path.basename(os.path.dirname(f2)),
                                                              os.path.basename(os.path.dirname(f1)), n))
    for per, fn in d[:int(k)]:
        print('%10.0f  %s' % (per, fn))


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'sipp':
        stats.sipp_stats(sys.argv[2])
    elif cmd == 'cg':
        stats.cg_totals(sys.argv[2])
    elif cmd == 'report':
        report(sys.argv[2])
    elif cmd == 'perfn':
        perfn(*sys.argv[2:8])
    else:
        sys.exit('unknown command %s' % cmd)
