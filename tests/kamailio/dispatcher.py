#!/usr/bin/env python3
"""Side by side: KSR.dispatcher at Kamailio 5.6.3 (app_lua, dispatcher.so) and at sipd, with the
same list (dispatcher/dispatcher.list) and the same script (dispatcher/dispatcher.lua, unchanged).

Each probe is one OPTIONS over UDP to sip:<case>@127.0.0.1; the script answers 200 with an X-DS
header carrying the return codes, $du/$ru and the _dsdst_/_dsctx_ XAVPs the dispatcher functions
left: round robin (several calls in a row), priority order, limits, R-URI mode, XAVP-only mode,
ds_next_dst/ds_next_domain walks, ds_select_routes, set queries, marks, skipping an inactive
destination, source matching.

Usage:
  dispatcher.py run kamailio|sipd [--sipd BIN] [--port N] [--out FILE]   print the answers as JSON
  dispatcher.py check sipd --sipd BIN [--port N]   run at sipd, compare with
                                                   expected/dispatcher-kamailio-5.6.3.json

Only 127.0.0.1; every probe waits at most 3 s; the proxy is our child, stopped by its pid.
Needs kamailio + kamailio-lua-modules for the Kamailio side.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(HERE, "expected", "dispatcher-kamailio-5.6.3.json")
SCRIPT_FILES = ("dispatcher.lua", "dispatcher.list")
PROBES = ("rr", "rr", "rr", "rr", "serial", "limit", "domain", "xavp", "next", "nextdomain",
          "routes", "exists", "from", "mark", "skip", "skip", "markall")

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "dispatcher.so"
loadmodule "app_lua.so"
modparam("dispatcher", "list_file", "{list}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_ping_interval", 0)
modparam("app_lua", "load", "{script}")
cfgengine "lua"
"""

SIPD_TOML = """listen = ["udp:127.0.0.1:{port}"]
workers = 1
cfgengine = "lua"
script = "dispatcher.lua"
modules = ["sl", "dispatcher"]
[modparam.dispatcher]
list_file = "dispatcher.list"
flags = 2
ds_ping_interval = 0
"""


def start(kind, tmp, port, sipd_bin):
    for name in SCRIPT_FILES:
        shutil.copyfile(os.path.join(HERE, "dispatcher", name), os.path.join(tmp, name))
    script = os.path.join(tmp, "dispatcher.lua")
    if kind == "kamailio":
        cfg = os.path.join(tmp, "kamailio.cfg")
        with open(cfg, "w") as fh:
            fh.write(KAMAILIO_CFG.format(port=port, script=script,
                                        list=os.path.join(tmp, "dispatcher.list")))
        os.makedirs(os.path.join(tmp, "run"), exist_ok=True)
        cmd = ["kamailio", "-f", cfg, "-DD", "-E", "-m", "64", "-x", "tlsf", "-X", "tlsf",
               "-w", tmp, "-Y", os.path.join(tmp, "run")]
    else:
        conf = os.path.join(tmp, "sipd.toml")
        with open(conf, "w") as fh:
            fh.write(SIPD_TOML.format(port=port))
        cmd = [sipd_bin, "run", "--config", conf]
    log = open(os.path.join(tmp, f"{kind}.log"), "w")
    proc = subprocess.Popen(cmd, cwd="/", stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def probe(sock, port, user, seq):
    branch = f"z9hG4bK-ds-{seq}-{os.getpid()}"
    lport = sock.getsockname()[1]
    req = (f"OPTIONS sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch}\r\n"
           f"Max-Forwards: 70\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=ds\r\n"
           f"To: <sip:{user}@127.0.0.1>\r\n"
           f"Call-ID: ds-{seq}-{os.getpid()}\r\n"
           f"CSeq: {seq} OPTIONS\r\n"
           f"Content-Length: 0\r\n\r\n")
    sock.sendto(req.encode(), ("127.0.0.1", port))
    deadline = time.time() + 3
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        text = data.decode("utf-8", "replace")
        if branch not in text:
            continue
        lines = text.split("\r\n")
        xds = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("x-ds:")]
        return {"status": lines[0], "x-ds": xds[0] if xds else None}
    return {"status": None, "x-ds": None}


def run(kind, port, sipd_bin):
    tmp = tempfile.mkdtemp(prefix=f"ds-{kind}-")
    proc = start(kind, tmp, port, sipd_bin)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        answers = {}
        # Retry the first probe while the proxy starts (at most ~10 s).
        for attempt in range(20):
            if proc.poll() is not None:
                raise SystemExit(f"{kind} exited: see {tmp}/{kind}.log\n"
                                 + open(os.path.join(tmp, f"{kind}.log")).read()[-3000:])
            first = probe(sock, port, "ping", 1000 + attempt)
            if first["status"]:
                break
            time.sleep(0.5)
        for seq, user in enumerate(PROBES, 1):
            answers[f"{seq:02d}-{user}"] = probe(sock, port, user, seq)
        return answers
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("run", "check"))
    ap.add_argument("kind", choices=("kamailio", "sipd"))
    ap.add_argument("--sipd", default=os.path.join(HERE, "..", "..", "target", "release", "sipd"))
    ap.add_argument("--port", type=int, default=35080)
    ap.add_argument("--out")
    a = ap.parse_args()
    a.sipd = os.path.abspath(a.sipd)
    answers = run(a.kind, a.port, a.sipd)
    text = json.dumps(answers, indent=2, sort_keys=True) + "\n"
    if a.cmd == "run":
        if a.out:
            with open(a.out, "w") as fh:
                fh.write(text)
        sys.stdout.write(text)
        return
    with open(EXPECTED) as fh:
        expected = json.load(fh)
    keys = [f"{seq:02d}-{user}" for seq, user in enumerate(PROBES, 1)]
    differ = [u for u in keys if answers.get(u) != expected.get(u)]
    for u in keys:
        mark = "DIFF" if u in differ else "same"
        print(f"{mark} {u}: kamailio {expected.get(u)} | sipd {answers.get(u)}")
    if differ:
        sys.exit(1)
    print("same results")


if __name__ == "__main__":
    main()
