#!/usr/bin/env python3
"""Helpers for run.sh (Python 3 stdlib only).

  stats.py sipp STAT.csv            -> "successful failed retrans elapsed_s rate_per_s"
  stats.py cg DIR                   -> "top_process_Ir all_processes_Ir top_file"
  stats.py report SUMMARY.tsv       -> the side-by-side table, sipd vs Kamailio, with ratios
"""
import csv
import glob
import os
import re
import sys


def sipp_stats(path):
    rows = [r for r in csv.reader(open(path), delimiter=';') if r]
    h = dict(zip(rows[0], rows[-1]))

    def epoch(v):  # "2026-11-22\t20:30:07.395665\t1795379407.395665"
        return float(v.split('\t')[-1])

    ok = int(h.get('SuccessfulCall(C)', 0))
    elapsed = epoch(h['CurrentTime']) - epoch(h['StartTime'])
    rate = ok / elapsed if elapsed > 0 else 0.0
    print('%d %s %s %.3f %.1f' % (ok, h.get('FailedCall(C)', '?'), h.get('Retransmissions(C)', '?'), elapsed, rate))


def cg_totals(d):
    procs = []
    for f in glob.glob(os.path.join(d, 'cg.*')):
        tot = 0
        for line in open(f, errors='replace'):
            m = re.match(r'^(?:summary|totals):\s+(\d+)', line)
            if m:
                tot = max(tot, int(m.group(1)))
        procs.append((tot, f))
    if not procs:
        print('0 0 none')
        return
    procs.sort(reverse=True)
    print('%d %d %s' % (procs[0][0], sum(p[0] for p in procs), procs[0][1]))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def report(path):
    rows = list(csv.DictReader(open(path), delimiter='\t'))
    by = {}
    for r in rows:
        by[(r['workload'], r['proxy'])] = r
    workloads = []
    for r in rows:
        if r['workload'] not in workloads:
            workloads.append(r['workload'])

    def fmt(v, prec=0):
        return '-' if v is None else ('{:,.%df}' % prec).format(v)

    def ratio(a, b, prec=2):
        return '-' if a is None or b is None or b == 0 else '%.*f' % (prec, a / b)

    cols = [('req/s (closed loop)', 'rate', 0), ('req per proxy CPU-s (utime+stime)', 'per_cpu_s', 0),
            ('req per proxy CPU-s (schedstat ns)', 'per_cpu_s_ns', 0),
            ('Ir per request (callgrind)', 'ir_per_req', 0)]
    print('| workload | metric | sipd | Kamailio | sipd/Kamailio |')
    print('|---|---|---|---|---|')
    for w in workloads:
        s, k = by.get((w, 'sipd'), {}), by.get((w, 'kamailio'), {})
        for title, key, prec in cols:
            a, b = num(s.get(key)), num(k.get(key))
            print('| %s | %s | %s | %s | %s |' % (w, title, fmt(a, prec), fmt(b, prec), ratio(a, b)))
    print()
    print('Run details (failed calls / retransmissions; callgrind N1/N2 runs):')
    for r in rows:
        print('  %-8s %-8s throughput: ok=%s failed=%s retrans=%s cpu_s=%s calib=%s | callgrind: n1=%s n2=%s '
              'Ir(n1)=%s Ir(n2)=%s failed=%s retrans=%s' % (
                  r['workload'], r['proxy'], r['ok'], r['failed'], r['retrans'], r['cpu_s'], r['calib'],
                  r['cg_n1'], r['cg_n2'], r['cg_ir1'], r['cg_ir2'], r['cg_failed'], r['cg_retrans']))


if __name__ == '__main__':
    cmd, arg = sys.argv[1], sys.argv[2]
    {'sipp': sipp_stats, 'cg': cg_totals, 'report': report}[cmd](arg)
