#!/usr/bin/env python3
"""Side-by-side flows of Kamailio's basic KEMI example at Kamailio 5.6.3 and at sipd.

The same SIP flows (sipp scenarios in tests/kamailio/sipp/, one flood sender in Python) run
against a target proxy started here with kamailio-basic-kemi-lua.lua UNCHANGED:

  kamailio  /usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi.cfg copied byte for byte
            into a temp dir, beside a generated kamailio-local.cfg (the file the basic cfg
            already imports, template tests/kamailio/kamailio-local.cfg.in) that switches the
            features on and points the cfg at SQLite and at the temp copy of the Lua script.
  sipd      `sipd run --config <tmp>/basic-kemi.toml`, generated from
            tests/kamailio/basic-kemi.toml (same modules/modparams, same Lua script).

Both get a fresh SQLite database with Kamailio's schema shapes (subscriber, address, location,
htable, version), the same subscribers and one trusted address (group 1).

Every step records what the UAs received, normalised: status code and reason of each reply,
plus the headers that carry the behaviour (Contact with expires/received, the challenge's
realm/qop/algorithm, Record-Route seen by the callee), never nonces, tags, branches or ports.

Usage:
  compare.py run kamailio [--out FILE] [--expiry] run the flows at Kamailio, print the table
  compare.py run sipd [--sipd BIN] [--out FILE]  same at sipd (default BIN: target/release/sipd)
      [--config examples/registrar.toml]        ... with another sipd config and its script
      [--db-from-cli]                           ... seeding the store with `sipd user/address add`
  compare.py diff A.json B.json                  print both side by side; exit 1 on a difference
  compare.py check sipd [--sipd BIN]             run at sipd and diff with expected/kamailio-5.6.3.json

Only 127.0.0.x addresses; each sipp run is bounded by -m 1, -timeout and timeout(1); the proxy
is our child, stopped by its pid. Needs: sipp, sqlite3 (CLI), and kamailio with
kamailio-lua-modules + kamailio-sqlite-modules for the Kamailio target.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SIPP_DIR = os.path.join(HERE, "sipp")
KEMI_DIR = "/usr/share/doc/kamailio/examples/kemi"
BASIC_CFG = os.path.join(KEMI_DIR, "kamailio-basic-kemi.cfg")
BASIC_LUA = os.path.join(KEMI_DIR, "kamailio-basic-kemi-lua.lua")
SQL_DIR = "/usr/share/kamailio/db_sqlite"
EXPECTED = os.path.join(HERE, "expected", "kamailio-5.6.3.json")

PROXY_IP = "127.0.0.1"
DOMAIN = PROXY_IP  # the subscribers' domain: the proxy's own address (is_myself)
# one source address per role, so pike and permissions see them apart
IP = {
    "alice": "127.0.0.5",
    "bob": "127.0.0.6",  # the callee: registers from, and answers at, 127.0.0.6:UPORT
    "trusted": "127.0.0.7",  # in `address`, group 1
    "nat": "127.0.0.8",
    "flood": "127.0.0.9",
    "foreign": "127.0.0.10",
    "carol": "127.0.0.11",
    "tcp": "127.0.0.12",
}
# the proxy's port in this run: UA ports are port+n, written "P+n" in the results so runs on
# other ports compare
BASE_PORT = 27260
USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw", "dave": "davepw"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


# ---------------------------------------------------------------- the database


def make_db(path, use_sipd_cli=None):
    """Kamailio's SQLite schema + subscribers + one trusted address (group 1, 127.0.0.7/32)."""
    if os.path.exists(path):
        os.unlink(path)
    sql = []
    for mod in ("standard", "auth_db", "permissions", "registrar", "usrloc", "htable"):
        f = os.path.join(SQL_DIR, f"{mod}-create.sql")
        if os.path.exists(f):
            with open(f) as fh:
                sql.append(fh.read())
    if not sql:
        raise SystemExit(f"no Kamailio SQLite schema in {SQL_DIR} (apt-get install kamailio-sqlite-modules)")
    if use_sipd_cli:
        # sipd's operator commands create their own tables; seed through them (stable contract)
        url = "sqlite://" + path
        for u, p in USERS.items():
            run_checked([use_sipd_cli, "user", "add", f"{u}@{DOMAIN}", p, "--db", url])
        run_checked([use_sipd_cli, "address", "add", "1", IP["trusted"] + "/32", "--db", url])
        return
    for u, p in USERS.items():
        sql.append(
            "INSERT INTO subscriber(username,domain,password,ha1,ha1b) VALUES("
            f"'{u}','{DOMAIN}','{p}','{md5(f'{u}:{DOMAIN}:{p}')}',"
            f"'{md5(f'{u}@{DOMAIN}:{DOMAIN}:{p}')}');"
        )
    sql.append(f"INSERT INTO address(grp,ip_addr,mask,port,tag) VALUES(1,'{IP['trusted']}',32,0,'trusted');")
    subprocess.run(["sqlite3", path], input="\n".join(sql), text=True, check=True)


def run_checked(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip() or r.stdout.strip()}")


# ---------------------------------------------------------------- targets


def port_busy(port):
    out = subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True).stdout
    return bool(out.strip())


class Target:
    """A proxy we start as our child and stop by pid."""

    def __init__(self, kind, tmp, port, sipd_bin=None, db_from_cli=False):
        self.kind, self.tmp, self.port, self.proc = kind, tmp, port, None
        self.sipd_bin = sipd_bin
        self.db = os.path.join(tmp, "kamailio.db" if kind == "kamailio" else "sipd.db")
        self.db_from_cli = db_from_cli
        self.logfile = os.path.join(tmp, f"{kind}.log")
        self.config = None

    def prepare(self):
        lua = os.path.join(self.tmp, "kamailio-basic-kemi-lua.lua")
        shutil.copyfile(BASIC_LUA, lua)
        if self.kind == "kamailio":
            make_db(self.db)
            shutil.copyfile(BASIC_CFG, os.path.join(self.tmp, "kamailio-basic-kemi.cfg"))
            with open(os.path.join(HERE, "kamailio-local.cfg.in")) as fh:
                local = fh.read()
            for k, v in {"@DB@": self.db, "@LUA@": lua, "@IP@": PROXY_IP, "@PORT@": str(self.port)}.items():
                local = local.replace(k, v)
            with open(os.path.join(self.tmp, "kamailio-local.cfg"), "w") as fh:
                fh.write(local)
            os.makedirs(os.path.join(self.tmp, "run"), exist_ok=True)
            self.cmd = [
                "kamailio", "-f", os.path.join(self.tmp, "kamailio-basic-kemi.cfg"), "-DD", "-E",
                "-m", "64", "-x", "tlsf", "-X", "tlsf", "-Y", os.path.join(self.tmp, "run"),
            ]
        else:
            make_db(self.db, self.sipd_bin if self.db_from_cli else None)
            config = self.config or os.path.join(HERE, "basic-kemi.toml")
            with open(config) as fh:
                toml = fh.read()
            if self.config:
                # another config (e.g. examples/registrar.toml): its script comes along
                m = re.search(r'(?m)^script = "([^"]+)"', toml)
                if m:
                    src = os.path.join(os.path.dirname(os.path.abspath(config)), m.group(1))
                    shutil.copyfile(src, os.path.join(self.tmp, os.path.basename(src)))
                    toml = toml.replace(m.group(0), f'script = "{os.path.basename(src)}"')
                if not re.search(r'(?m)^url = ', toml):
                    toml = re.sub(r'(?m)^\[db\]$', f'[db]\nurl = "sqlite://{self.db}"', toml)
            toml = re.sub(r'(?m)^listen = .*$',
                          f'listen = ["udp:{PROXY_IP}:{self.port}", "tcp:{PROXY_IP}:{self.port}"]', toml)
            toml = re.sub(r'(?m)^url = .*$', f'url = "sqlite://{self.db}"', toml)
            with open(os.path.join(self.tmp, "basic-kemi.toml"), "w") as fh:
                fh.write(toml)
            self.cmd = [self.sipd_bin, "run", "--config", os.path.join(self.tmp, "basic-kemi.toml")]

    def start(self):
        if port_busy(self.port):
            raise SystemExit(f"UDP port {self.port} busy: pass --port")
        self.prepare()
        with open(os.path.join(self.tmp, "cmd.txt"), "w") as fh:
            fh.write(" ".join(self.cmd) + "\n")
        out = open(self.logfile, "w")
        self.proc = subprocess.Popen(self.cmd, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        for _ in range(150):
            if self.proc.poll() is not None:
                tail = open(self.logfile).read()[-3000:]
                raise SystemExit(f"{self.kind} exited at startup (rc {self.proc.returncode}):\n{tail}")
            if port_busy(self.port):
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit(f"{self.kind} did not bind udp {PROXY_IP}:{self.port}")
        time.sleep(1.0)  # Kamailio's children, sipd's workers: let them load the script

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        # Kamailio's main process stops its children itself on SIGTERM
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def version(self):
        if self.kind == "kamailio":
            return subprocess.run(["kamailio", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        return subprocess.run([self.sipd_bin, "--version"], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- sipp and normalisation

KEEP = ("contact", "www-authenticate", "proxy-authenticate", "record-route", "expires",
        "min-expires", "p-hint", "reason")


def norm_auth(v):
    """A digest challenge without its nonce/opaque: scheme, realm, qop, algorithm, stale."""
    params = dict((k.lower(), val.strip('"')) for k, val in re.findall(r'(\w+)\s*=\s*("[^"]*"|[^,\s]+)', v))
    keep = [f"{k}={params[k]}" for k in ("realm", "qop", "algorithm", "stale") if k in params]
    return v.split()[0] + " " + ",".join(keep)


def norm_contact(v):
    """Contact values: the address (with its port: the binding) and the expires/received params;
    expires rounded to minutes so the seconds a run takes do not count."""
    out = []
    for c in re.split(r",(?=\s*<)", v):
        c = c.strip()
        m = re.match(r"<([^>]*)>(.*)", c)
        uri, params = (m.group(1), m.group(2)) if m else (c, "")
        uri = re.sub(r";transport=udp", "", uri, flags=re.I)
        kept = []
        for p in params.split(";"):
            p = p.strip()
            if not p:
                continue
            k, _, val = p.partition("=")
            if k.lower() == "expires":
                try:
                    val = str(int(round(int(val) / 60.0)) * 60)
                except ValueError:
                    pass
                kept.append(f"expires={val}")
            elif k.lower() in ("received", "q", "+sip.instance", "reg-id"):
                kept.append(f"{k.lower()}={val.strip(chr(34))}")
        out.append(rel_ports("<" + uri + ">" + "".join(";" + k for k in kept)))
    # the bindings' order is no behaviour (equal q): sorted
    return ", ".join(sorted(out))


def rel_ports(s):
    """Ports of this run's UAs (BASE_PORT..BASE_PORT+20) written as P+n."""
    def sub(m):
        n = int(m.group(1)) - BASE_PORT
        return f":P+{n}" if 0 <= n <= 20 else m.group(0)
    return re.sub(r":(\d{2,5})\b", sub, s)


def norm_rr(v):
    """Record-Route: how many entries, and each one's host and lr (port dropped, ftag/nat kept as names)."""
    out = []
    for r in re.split(r",(?=\s*<)", v):
        m = re.search(r"<sip:([^;>:]+)(?::\d+)?([^>]*)>", r)
        if not m:
            out.append(r.strip())
            continue
        params = sorted(p.split("=")[0].lower() for p in m.group(2).split(";") if p)
        out.append(f"<sip:{m.group(1)};{';'.join(params)}>")
    return ", ".join(out)


def parse_messages(path):
    """(direction, first line, {header: [values]}) for each message of a sipp -message_file."""
    if not os.path.exists(path):
        return []
    text = open(path, errors="replace").read()
    msgs = []
    for block in re.split(r"(?m)^-{20,} .*$", text):
        m = re.search(r"^(UDP|TCP) message (sent|received)[^\n]*\n\n(.*)", block.strip("\n"), re.S)
        if not m:
            continue
        lines = m.group(3).replace("\r", "").split("\n")
        hdrs = {}
        for line in lines[1:]:
            if not line.strip():
                break
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        msgs.append((m.group(2), lines[0].strip(), hdrs))
    return msgs


def summarise(msgs, direction):
    """The normalised list of what one UA received (direction 'received') or sent."""
    out = []
    seen = set()
    for d, first, hdrs in msgs:
        if d != direction:
            continue
        if first.startswith("SIP/2.0"):
            item = first[8:]  # "401 Unauthorized"
            if item.startswith("100 "):
                item = "100"  # the reason of a 100 is no behaviour (Kamailio: "trying -- your call...")
            key_extra = hdrs.get("cseq", [""])[0]
        else:
            item = first.split()[0]  # the method of a request the callee received
            key_extra = hdrs.get("cseq", [""])[0]
        details = []
        for h in KEEP:
            for v in hdrs.get(h, []):
                if h in ("www-authenticate", "proxy-authenticate"):
                    v = norm_auth(v)
                elif h == "contact":
                    if not first.startswith("SIP/2.0 2") or "REGISTER" not in key_extra:
                        continue  # only the registrar's binding list is compared
                    v = norm_contact(v)
                elif h == "record-route":
                    v = norm_rr(v)
                details.append(f"{h}: {v}")
        entry = item + ("  [" + " | ".join(details) + "]" if details else "")
        # a retransmitted reply is the same transaction's reply again: keep it once
        k = (entry, key_extra)
        if k in seen:
            continue
        seen.add(k)
        out.append(entry)
    return out


class Runner:
    def __init__(self, port, tmp):
        self.port, self.tmp, self.n = port, tmp, 0

    def sipp(self, scenario, role, lport, keys, auth=None, transport="u1", background=False, timeout=10,
             retried=False):
        """One sipp run (1 call) from IP[role]:lport; returns (rc, messages) or the Popen."""
        self.n += 1
        d = os.path.join(self.tmp, "sipp", f"{self.n:02d}-{os.path.splitext(scenario)[0]}-{role}")
        os.makedirs(d, exist_ok=True)
        mf = os.path.join(d, "messages.log")
        cmd = ["timeout", "-k", "3", str(timeout + 10), "sipp", f"{PROXY_IP}:{self.port}",
               "-i", IP[role], "-p", str(lport), "-t", transport, "-sf", os.path.join(SIPP_DIR, scenario),
               "-m", "1", "-nostdin", "-timeout", f"{timeout}s", "-timeout_error",
               "-trace_msg", "-message_file", mf, "-trace_err", "-error_file", os.path.join(d, "errors.log")]
        for k, v in keys.items():
            cmd += ["-key", k, str(v)]
        if auth:
            cmd += ["-au", auth[0], "-ap", auth[1]]
        with open(os.path.join(d, "cmd.txt"), "w") as fh:
            fh.write(" ".join(cmd) + "\n")
        out = open(os.path.join(d, "sipp.out"), "w")
        p = subprocess.Popen(cmd, cwd=d, stdout=out, stderr=subprocess.STDOUT)
        if background:
            p.mf = mf
            time.sleep(0.3)
            return p
        rc = p.wait()
        msgs = parse_messages(mf)
        if not msgs and not retried:
            # sipp ended without even tracing its first request (seen once on a loaded machine:
            # exit 0, no output, an empty trace): a harness failure, not an answer; once more.
            log(f"sipp {scenario} as {role} exited {rc} without sending a message: once more")
            return self.sipp(scenario, role, lport, keys, auth, transport, background, timeout,
                             retried=True)
        return rc, msgs


def step(name, rc, msgs, direction="received"):
    return {"step": name, "sipp_ok": rc == 0, "got": summarise(msgs, direction)}


def flood(port, ip, count=60, gap=0.002):
    """count OPTIONS keepalives from one address as fast as gap allows; then, 3 s later (after
    pike's window moved on, inside htable's 300 s ipban), 3 more. Replies are counted."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.settimeout(0.05)
    lport = s.getsockname()[1]

    def opt(i):
        return (f"OPTIONS sip:{PROXY_IP} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{lport};branch=z9hG4bK-fl{i}-{time.time_ns()}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:flood@{ip}>;tag=fl{i}\r\nTo: <sip:{PROXY_IP}>\r\n"
                f"Call-ID: flood-{i}-{time.time_ns()}@{ip}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()

    def drain(until):
        got = 0
        while time.time() < until:
            try:
                data = s.recv(65535)
                if data.startswith(b"SIP/2.0 200"):
                    got += 1
            except socket.timeout:
                pass
        return got

    answered = 0
    for i in range(count):
        s.sendto(opt(i), (PROXY_IP, port))
        answered += drain(time.time() + gap)
    answered += drain(time.time() + 1.0)
    time.sleep(2.0)
    later = 0
    for i in range(3):
        s.sendto(opt(1000 + i), (PROXY_IP, port))
        later += drain(time.time() + 0.5)
    s.close()
    return answered, later


def run_flows(target, tmp):
    port = target.port
    r = Runner(port, tmp)
    up = port + 10  # bob's UAS port (and his registration's source port)
    res = []
    d = DOMAIN

    # 1. OPTIONS keepalive (no user, R-URI is the proxy): 200 "Keepalive"
    rc, m = r.sipp("options.xml", "alice", port + 1, {"domain": d})
    res.append(step("options_keepalive", rc, m))

    # 2. REGISTER -> 401 -> REGISTER with credentials -> 200 listing the binding
    rc, m = r.sipp("register.xml", "alice", port + 2, {"user": "alice", "domain": d, "expires": 3600},
                   auth=("alice", USERS["alice"]))
    res.append(step("register_alice", rc, m))

    # 3. bob registers from the address his UAS will answer at
    rc, m = r.sipp("register.xml", "bob", up, {"user": "bob", "domain": d, "expires": 3600},
                   auth=("bob", USERS["bob"]))
    res.append(step("register_bob", rc, m))

    # 4. a call alice -> bob: 407, credentials, relayed to bob's contact, record-routed, BYE in dialog
    uas = r.sipp("call_uas.xml", "bob", up, {}, background=True, timeout=15)
    rc, m = r.sipp("call_uac.xml", "alice", port + 2, {"user": "alice", "domain": d, "callee": "bob"},
                   auth=("alice", USERS["alice"]))
    try:
        urc = uas.wait(timeout=25)
    except subprocess.TimeoutExpired:
        uas.terminate()
        urc = uas.wait()
    res.append(step("call_alice_to_bob.caller", rc, m))
    res.append(step("call_alice_to_bob.callee", urc, parse_messages(uas.mf)))

    # 5. 404 for an unknown (unregistered) local user, after proxy auth
    rc, m = r.sipp("invite_auth.xml", "alice", port + 2,
                   {"user": "alice", "domain": d, "callee": "dave", "rdomain": d}, auth=("alice", USERS["alice"]))
    res.append(step("invite_unregistered_user", rc, m))

    # 6. a wrong password refused (REGISTER answered 401 again, or 403)
    rc, m = r.sipp("register.xml", "carol", port + 3, {"user": "carol", "domain": d, "expires": 3600},
                   auth=("carol", "wrong-password"))
    res.append(step("register_wrong_password", rc, m))

    # 7. a short expires (2 s): what expiry the registrar grants (min_expires)
    rc, m = r.sipp("register.xml", "carol", port + 4, {"user": "carol", "domain": d, "expires": 2},
                   auth=("carol", USERS["carol"]))
    res.append(step("register_expires_2", rc, m))
    carol_registered = time.time()

    # 8. a binding removed (Expires: 0), then a call to it: 404
    rc, m = r.sipp("register.xml", "bob", up, {"user": "bob", "domain": d, "expires": 0},
                   auth=("bob", USERS["bob"]))
    res.append(step("unregister_bob", rc, m))
    rc, m = r.sipp("invite_auth.xml", "alice", port + 2,
                   {"user": "alice", "domain": d, "callee": "bob", "rdomain": d}, auth=("alice", USERS["alice"]))
    res.append(step("invite_after_unregister", rc, m))

    # 9. a trusted source address (address table, group 1): no challenge, straight to lookup (404)
    rc, m = r.sipp("invite_once.xml", "trusted", port + 5,
                   {"user": "gw", "domain": "gw.example.net", "callee": "dave", "rdomain": d})
    res.append(step("trusted_ip_invite", rc, m))

    # 10. not trusted, not local, not for us: 403 Not relaying (no open relay)
    rc, m = r.sipp("invite_once.xml", "foreign", port + 6,
                   {"user": "mallory", "domain": "example.org", "callee": "someone", "rdomain": "example.net"})
    res.append(step("foreign_domain_relay", rc, m))

    # 11. a REGISTER from behind a NAT (Via/Contact port differ from the source port)
    rc, m = r.sipp("register_nat.xml", "nat", port + 7,
                   {"user": "dave", "domain": d, "expires": 3600, "fakeport": 5999}, auth=("dave", USERS["dave"]))
    res.append(step("register_behind_nat", rc, m))

    # 12. the same REGISTER flow over TCP
    rc, m = r.sipp("register.xml", "tcp", port + 8, {"user": "alice", "domain": d, "expires": 3600},
                   auth=("alice", USERS["alice"]), transport="t1")
    res.append(step("register_tcp", rc, m))

    # 13. (--expiry) carol's binding of step 7 (granted 60 s at Kamailio: min_expires) expires by
    # itself: a call just before reaches her; 62 s after she registered, a call gets 404
    if getattr(target, "expiry", False):
        # before: a call to carol reaches her contact (a sipp UAS there answers)
        uas = r.sipp("call_uas.xml", "carol", port + 4, {}, background=True, timeout=15)
        rc, m = r.sipp("call_uac.xml", "alice", port + 2, {"user": "alice", "domain": d, "callee": "carol"},
                       auth=("alice", USERS["alice"]))
        try:
            urc = uas.wait(timeout=25)
        except subprocess.TimeoutExpired:
            uas.terminate()
            urc = uas.wait()
        res.append(step("call_before_expiry.caller", rc, m))
        res.append(step("call_before_expiry.callee", urc, parse_messages(uas.mf)))
        wait = carol_registered + 62 - time.time()
        if wait > 0:
            log(f"waiting {wait:.0f} s for carol's binding to expire")
            time.sleep(wait)
        rc, m = r.sipp("invite_auth.xml", "alice", port + 2,
                       {"user": "alice", "domain": d, "callee": "carol", "rdomain": d}, auth=("alice", USERS["alice"]))
        res.append(step("invite_after_expiry", rc, m))

    # 14. a flood from one address: pike blocks it and htable's ipban keeps it out
    answered, later = flood(port, IP["flood"])
    res.append({"step": "flood_pike_ipban", "sipp_ok": True,
                "got": [f"answered some, not all of 60: {0 < answered < 60}",
                        f"answered after 3 s (ipban): {later}"],
                "info": f"{answered} of 60 answered"})
    return res


# ---------------------------------------------------------------- report


def table(results, other=None):
    """Lines of the table; with other, side by side and marks differing steps."""
    lines, diffs = [], 0
    by_step = {s["step"]: s for s in (other or {}).get("steps", [])}
    for s in results["steps"]:
        got = s["got"]
        o = by_step.get(s["step"])
        mark = ""
        if other is not None:
            same = o is not None and o["got"] == got
            mark = "   " if same else "!! "
            diffs += 0 if same else 1
        lines.append(f"{mark}{s['step']}" + ("" if s.get("sipp_ok", True) else "   (sipp: scenario failed)")
                     + (f"   ({s['info']})" if s.get("info") else ""))
        for g in got:
            lines.append(f"{mark}    {results['target']}: {g}")
        if other is not None and o is not None and o["got"] != got:
            for g in o["got"]:
                lines.append(f"{mark}    {other['target']}: {g}")
    if other is not None:
        for name in by_step:
            if name not in {s["step"] for s in results["steps"]}:
                lines.append(f"!! {name}: only at {other['target']}")
                diffs += 1
    return lines, diffs


def cmd_run(a):
    global BASE_PORT
    BASE_PORT = a.port
    if a.target == "sipd":
        a.sipd = a.sipd or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "sipd")
        if not os.access(a.sipd, os.X_OK):
            raise SystemExit(f"no sipd binary at {a.sipd} (cargo build --release -p sipd, or --sipd)")
    for tool in ("sipp", "sqlite3", "ss") + (("kamailio",) if a.target == "kamailio" else ()):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found")
    tmp = a.keep or tempfile.mkdtemp(prefix=f"compare-{a.target}-")
    os.makedirs(tmp, exist_ok=True)
    t = Target(a.target, tmp, a.port, a.sipd, a.db_from_cli)
    t.expiry = a.expiry
    t.config = a.config
    log(f"starting {a.target} on udp/tcp {PROXY_IP}:{a.port} in {tmp}")
    t.start()
    try:
        steps = run_flows(t, tmp)
    finally:
        t.stop()
    results = {"target": a.target, "version": t.version(), "steps": steps}
    for line in table(results)[0]:
        print(line)
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=1)
            fh.write("\n")
        log(f"results in {a.out}; logs and sipp traces in {tmp}")
    else:
        log(f"logs and sipp traces in {tmp}")
    return results


def cmd_diff(a_path, b_path):
    a, b = (json.load(open(p)) for p in (a_path, b_path))
    lines, diffs = table(a, b)
    print(f"{a['target']} ({a.get('version', '?')})  vs  {b['target']} ({b.get('version', '?')})")
    for line in lines:
        print(line)
    print(f"{diffs} step(s) differ" if diffs else "same results")
    return 1 if diffs else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "check"):
        r = sub.add_parser(name)
        r.add_argument("target", choices=["kamailio", "sipd"] if name == "run" else ["sipd", "kamailio"])
        r.add_argument("--sipd", help="sipd binary (default: $CARGO_TARGET_DIR or target/release/sipd)")
        r.add_argument("--port", type=int, default=int(os.environ.get("COMPARE_PORT", "27260")),
                       help="proxy port on 127.0.0.1; UAs use port+1..port+10 (default 27260)")
        r.add_argument("--out", help="write the results as JSON")
        r.add_argument("--keep", help="work dir to use (kept) instead of a fresh temp dir")
        r.add_argument("--config", help="sipd: another TOML than basic-kemi.toml (its script is copied too), "
                       "e.g. examples/registrar.toml")
        r.add_argument("--expiry", action="store_true",
                       help="also wait ~62 s for a 60 s binding to expire by itself (then 404)")
        r.add_argument("--db-from-cli", action="store_true",
                       help="seed sipd's database with `sipd user add` / `sipd address add`")
        if name == "check":
            r.add_argument("--expected", default=EXPECTED)
    d = sub.add_parser("diff")
    d.add_argument("a")
    d.add_argument("b")
    a = p.parse_args()
    if a.cmd == "diff":
        sys.exit(cmd_diff(a.a, a.b))
    if a.cmd == "run":
        cmd_run(a)
        return
    out = a.out or os.path.join(tempfile.gettempdir(), f"compare-{a.target}-{os.getpid()}.json")
    a.out = out
    with open(a.expected) as fh:
        # the reference was recorded with --expiry: run the same steps
        a.expiry = a.expiry or any(s["step"] == "invite_after_expiry" for s in json.load(fh)["steps"])
    cmd_run(a)
    sys.exit(cmd_diff(a.expected, out))


if __name__ == "__main__":
    main()
