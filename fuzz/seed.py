#!/usr/bin/env python3
"""Rebuild fuzz/corpus/<target>/ from ../shared/conformance (RFC 4475/5118 torture messages,
robustness inputs), the example configurations and a few hand-written inputs.

    python3 fuzz/seed.py [CONFORMANCE_DIR]     (default: ../shared/conformance beside the repo)

Seed files are named by the SHA-1 of their content, as libFuzzer names what it finds."""
import hashlib
import pathlib
import re
import struct
import sys

here = pathlib.Path(__file__).resolve().parent
root = here.parent
conf = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "conformance"
out = here / "corpus"


def put(target, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


messages = []
for pat in ["rfc4475/*.sip", "rfc4475/*/*.sip", "rfc5118/*.sip", "rfc5118/archive/*.dat"]:
    messages += [p.read_bytes() for p in sorted(conf.glob(pat))]
blobs = [p.read_bytes() for p in sorted(conf.glob("robustness/*.bin"))]
if not messages:
    sys.exit(f"no messages under {conf}")

# Heads that are not UTF-8 (issue 15 item 4): a Latin-1 INVITE (display names, Subject, a
# quoted Contact param) and a reply with a Latin-1 reason phrase, parsed through the lossy view.
latin1 = [
    b"INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.l1;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: \"Jos\xe9 M\xfcller\" <sip:jose@a.example>;tag=f1\r\n"
    b"To: \"Ren\xe9e\" <sip:bob@b.example>\r\nCall-ID: latin1@192.0.2.1\r\nCSeq: 1 INVITE\r\n"
    b"Contact: \"Jos\xe9\" <sip:jose@192.0.2.1>;x=\"\xe0 la\"\r\nSubject: caf\xc3\xa9 \xe0 \xfc\xe9\x80\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 486 Occup\xe9\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK.l1\r\n"
    b"From: \"Jos\xe9\" <sip:jose@a.example>;tag=f1\r\nTo: <sip:bob@b.example>;tag=t\r\n"
    b"Call-ID: latin1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
]
messages += latin1

# sip_message: every message and blob as is.
for m in messages + blobs:
    put("sip_message", m)

# stream_framer: [limit byte, segment seed] + two messages back to back, keepalives between.
for i, m in enumerate(messages + blobs):
    put("stream_framer", bytes([0x7F, i & 0xFF]) + m + b"\r\n\r\n" + m)
put("stream_framer", bytes([0x02, 7]) + b"\r\n" * 8)


def headers(m):
    head = m.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = re.split(rb"\r?\n(?![ \t])", head)
    return lines[0], [l.split(b":", 1) for l in lines[1:] if b":" in l]


# header_values: selector byte (see the target) + a value taken from the corpus.
seen = set()
for m in messages:
    start, hs = headers(m)
    parts = start.split(b" ")
    vals = []
    if len(parts) >= 3 and not start.startswith(b"SIP/"):
        vals.append((1, parts[1]))
    for name, value in hs:
        n, v = name.strip().lower(), value.strip()
        if n in (b"via", b"v"):
            vals.append((0, v))
            if b";" in v:
                vals.append((3, v.split(b";", 1)[1]))
        elif n in (b"from", b"f", b"to", b"t", b"contact", b"m", b"route", b"record-route"):
            vals.append((2, v))
            vals.append((7, v))
        elif n == b"cseq":
            vals.append((4, v))
        elif n in (b"subject", b"s", b"user-agent"):
            vals.append((5, v))
    vals.append((6, parts[0]))
    for sel, v in vals:
        if (sel, v) not in seen:
            seen.add((sel, v))
            put("header_values", bytes([sel]) + v)

# digest_credentials: every Authorization-like value in the corpus, and RFC 7616 shapes.
for m in messages:
    for name, value in headers(m)[1]:
        if name.strip().lower() in (b"authorization", b"proxy-authorization", b"www-authenticate"):
            put("digest_credentials", value.strip())
for cred in [
    b'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
    b'algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, '
    b'cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, '
    b'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
    b'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    b'Digest username="a\\"b@example.com", realm="example.com", nonce="00", uri="sip:x", '
    b'response="00", algorithm=MD5-sess, qop=auth-int, nc=0000000a, cnonce="c"',
    b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
]:
    put("digest_credentials", cred)

# lua_kemi_args, js_kemi_args, py_kemi_args (one input layout, common/kemi_args.rs):
# [export slot, shape] + typed arguments.
def s(b):
    return b"\x00" + bytes([len(b)]) + b
for target in ["lua_kemi_args", "js_kemi_args", "py_kemi_args"]:
    for pick in range(0, 256, 3):
        put(target, bytes([pick, 0b0100]) + s(b"$var(x)") + s(b"sip:bob@example.com"))
    put(target, bytes([1, 0b0110]) + b"\x02" + struct.pack("<q", -2**63) + b"\x03" + struct.pack("<d", float("nan")) + b"\x05")
    put(target, bytes([2, 0b1111]) + b"\x04\xff" + b"\x07\x03abc" + b"\x08" + b"\x09" + b"\x06" + b"\x03" + struct.pack("<d", 2.0**63) + s(b"\x1b\x1e\x00"))

# config_toml: the example configurations and small variations.
for p in sorted((root / "examples").glob("*.toml")):
    put("config_toml", p.read_bytes())
for text in [
    'listen = ["udp:127.0.0.1:5060", "tcp:[::1]:5060"]\nscript = "route.lua"\nworkers = 1\n',
    'listen = ["udp:127.0.0.1:0"]\nscript = "route.lua"\nmodules = ["htable", "pike"]\n'
    '[modparam.htable]\nhtable = ["a=>size=8;autoexpire=300;", "b=>size=2;dbtable=htable;"]\n'
    '[modparam.pike]\nsampling_time_unit = 2\nreqs_density_per_unit = 16\n'
    '[limits]\nmax_instructions = 1000\nmax_memory = "16MB"\n',
    'listen = ["udp:127.0.0.1:5060"]\nscript = "route.lua"\n[tm]\nt1 = 500\nfr_timer = 1\n'
    '[modparam.tm]\nfr_inv_timer = 120000\n[rpc]\nsocket = "/tmp/x.sock"\n',
]:
    put("config_toml", text.encode())

# rpc_json: requests for each family of methods, batches, garbage.
for body in [
    '{"jsonrpc":"2.0","method":"core.version","id":1}',
    '{"jsonrpc":"2.0","method":"system.listMethods","id":"a"}',
    '{"jsonrpc":"2.0","method":"stats.get_statistics","params":["all"],"id":2}',
    '{"jsonrpc":"2.0","method":"htable.sets","params":["t","k","v"],"id":3}',
    '{"jsonrpc":"2.0","method":"htable.seti","params":["t","n","5"],"id":3}',
    '{"jsonrpc":"2.0","method":"htable.setex","params":["t","k",10],"id":3}',
    '{"jsonrpc":"2.0","method":"htable.dump","params":["t"],"id":4}',
    '{"jsonrpc":"2.0","method":"ul.lookup","params":["location","alice@example.com"],"id":5}',
    '{"jsonrpc":"2.0","method":"ul.rm","params":["location","alice"],"id":5}',
    '{"jsonrpc":"2.0","method":"ul.dump","id":5}',
    '{"jsonrpc":"2.0","method":"permissions.addressDump","id":6}',
    '{"jsonrpc":"2.0","method":"siptrace.status","params":["on"],"id":7}',
    '{"jsonrpc":"2.0","method":"kemi.stats","id":8}',
    '{"jsonrpc":"2.0","method":"tm.stats","id":8}',
    '{"jsonrpc":"2.0","method":"app_lua.api_list","id":9}',
    '[{"jsonrpc":"2.0","method":"core.uptime","id":1},{"jsonrpc":"2.0","method":"core.ps"}]',
    '[]',
    '{"jsonrpc":"2.0","method":"x","params":{"a":1},"id":null}',
    '{"jsonrpc":"1.0","method":1}',
    '{"jsonrpc":"2.0","method":"htable.get","params":["t",' + "[" * 40 + "]" * 40 + '],"id":1e400}',
]:
    put("rpc_json", body.encode())
put("rpc_json", b"\xff\xfe{garbage")

total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
print(f"seeded {out} ({total} bytes)")
