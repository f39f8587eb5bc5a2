#!/usr/bin/env python3
"""A small SIP user agent client over TLS, on Python's ssl module (OpenSSL), for sipd's tests.

    sip_tls_client.py call HOST PORT --ca CA.pem --name NAME --to SIP-URI [--cert C --key K]
        INVITE to SIP-URI through the proxy at HOST:PORT (the first hop, over TLS, the server
        certificate verified against CA.pem for NAME), then ACK the 200 and BYE along the
        Record-Route set. Prints each status line received; exit 0 when the call completed.
        With --wait-for FILE, the call waits after the handshake until FILE exists.
    sip_tls_client.py handshake HOST PORT --ca CA.pem --name NAME [--cert C --key K]
        Only the handshake: prints "handshake ok" (exit 0) or "handshake failed: ..." (exit 3).
    sip_tls_client.py options HOST PORT --ca CA.pem --name NAME --count N [--udp]
        N OPTIONS one after the other over one TLS connection (or UDP datagrams with --udp),
        each answered before the next; exit 0 when all got a final reply (benches/load/tls.sh).

Every wait is bounded (--timeout seconds, 10 by default).
"""
import argparse
import os
import random
import re
import socket
import ssl
import sys
import time


def connect(args):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    return ctx.wrap_socket(raw, server_hostname=args.name)


class Reader:
    """Cuts the stream into SIP messages by Content-Length."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def message(self):
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode("utf-8", "replace")
                m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                length = int(m.group(1)) if m else 0
                total = end + 4 + length
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg.decode("utf-8", "replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the proxy")
            self.buf += chunk


def headers(msg, name):
    return [v.strip() for v in re.findall(r"(?im)^%s\s*:(.*)$" % re.escape(name), msg)]


def call(args):
    sock = connect(args)
    print("connected", sock.version(), flush=True)
    if args.wait_for:
        deadline = time.monotonic() + args.timeout
        while not os.path.exists(args.wait_for):
            if time.monotonic() > deadline:
                print("failed: %s never appeared" % args.wait_for)
                return 1
            time.sleep(0.02)
    rd = Reader(sock)
    local = sock.getsockname()
    host = "%s:%d" % (local[0], local[1])
    call_id = "%08x@tls-client" % random.getrandbits(32)
    tag = "%08x" % random.getrandbits(32)
    frm = "<sip:alice@%s>;tag=%s" % (args.host, tag)
    to = "<%s>" % args.to

    def request(method, ruri, cseq, to_hdr, routes=()):
        branch = "z9hG4bK%08x" % random.getrandbits(32)
        lines = [
            "%s %s SIP/2.0" % (method, ruri),
            "Via: SIP/2.0/TLS %s;branch=%s;rport" % (host, branch),
            "Max-Forwards: 70",
        ]
        lines += ["Route: %s" % r for r in routes]
        lines += [
            "From: %s" % frm,
            "To: %s" % to_hdr,
            "Call-ID: %s" % call_id,
            "CSeq: %d %s" % (cseq, method),
            "Contact: <sip:alice@%s;transport=tls>" % host,
            "Content-Length: 0",
            "",
            "",
        ]
        sock.sendall("\r\n".join(lines).encode())

    def final(method):
        while True:
            msg = rd.message()
            status = msg.split("\r\n", 1)[0]
            print("received:", status, flush=True)
            if not status.startswith("SIP/2.0 "):
                continue
            code = int(status.split()[1])
            if code >= 200 and headers(msg, "CSeq")[0].endswith(method):
                return code, msg

    request("INVITE", args.to, 1, to)
    code, ok = final("INVITE")
    if code != 200:
        print("INVITE failed: %d" % code)
        return 1
    to_tagged = headers(ok, "To")[0]
    contact = re.search(r"<([^>]+)>", headers(ok, "Contact")[0]).group(1)
    rr = [r for h in headers(ok, "Record-Route") for r in h.split(",")]
    routes = [r.strip() for r in reversed(rr)]
    print("record-route:", ", ".join(rr), flush=True)
    request("ACK", contact, 1, to_tagged, routes)
    request("BYE", contact, 2, to_tagged, routes)
    code, _ = final("BYE")
    sock.close()
    if code != 200:
        print("BYE failed: %d" % code)
        return 1
    print("call complete", flush=True)
    return 0


def handshake(args):
    try:
        sock = connect(args)
    except (ssl.SSLError, OSError) as e:
        print("handshake failed: %s" % e, flush=True)
        return 3
    print("handshake ok", sock.version(), flush=True)
    sock.close()
    return 0


def options(args):
    if args.udp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(args.timeout)
        sock.connect((args.host, args.port))
        proto = "UDP"

        def exchange(wire):
            sock.send(wire)
            while True:
                reply = sock.recv(65536).decode("utf-8", "replace")
                if not reply.startswith("SIP/2.0 1"):
                    return reply
    else:
        sock = connect(args)
        rd = Reader(sock)
        proto = "TLS"

        def exchange(wire):
            sock.sendall(wire)
            while True:
                reply = rd.message()
                if not reply.startswith("SIP/2.0 1"):
                    return reply
    local = sock.getsockname()
    host = "%s:%d" % (local[0], local[1])
    for i in range(args.count):
        wire = "\r\n".join([
            "OPTIONS sip:%s:%d SIP/2.0" % (args.host, args.port),
            "Via: SIP/2.0/%s %s;branch=z9hG4bK-%d-%d;rport" % (proto, host, os.getpid(), i),
            "Max-Forwards: 70",
            "From: <sip:bench@%s>;tag=%d" % (args.host, os.getpid()),
            "To: <sip:%s:%d>" % (args.host, args.port),
            "Call-ID: %d-%d@bench" % (i, os.getpid()),
            "CSeq: 1 OPTIONS",
            "Content-Length: 0",
            "",
            "",
        ]).encode()
        reply = exchange(wire)
        if not reply.startswith("SIP/2.0 200"):
            print("request %d: %s" % (i, reply.split("\r\n", 1)[0]))
            return 1
    print("%d OPTIONS answered over %s" % (args.count, proto), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["call", "handshake", "options"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--ca")
    p.add_argument("--name")
    p.add_argument("--to")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--max-tls12", action="store_true")
    p.add_argument("--wait-for", help="call: after the handshake, wait for this file to exist")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--udp", action="store_true", help="options: over UDP instead of TLS")
    args = p.parse_args()
    try:
        return {"call": call, "handshake": handshake, "options": options}[args.mode](args)
    except (ssl.SSLError, OSError, EOFError) as e:
        print("failed: %s" % e, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
