//! What the `*_kemi_args` targets share: the sample messages, the export table sipd links
//! (less [`LEFT_OUT`]), one engine per thread with fresh stateful modules every
//! [`FRESH_SERVICES_EVERY`] runs, and the decoding of an input into a call spec.
//!
//! Input layout: byte 0 picks the export (by slot), byte 1 the message (bit 0: reply) and the
//! argument count (bits 1..3, 0 to 7); each argument is a type byte, then for a string a length
//! byte and that many bytes, for a number 8 bytes (an `i64` for integers, an `f64` for floats).
//!
//! The spec handed to the script's `fuzz(spec)`: the export's qualified name, then one part
//! per argument, each part ended by `\x1e`; a part is a tag and its text: `s` string, `n`
//! number (decimal, integer or `e` notation), `I`/`J` +/-infinity, `N` NaN, `Z` -0.0, `t`/`f`
//! booleans, `T` a one-element list/table holding a string, `F` a function, `x` nil/None/null.
//! Inside strings `\x1b` and `\x1e` are escaped as `\x1b` + (byte + 64).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kemi_runtime::engine::limits::ScriptLimits;
use kemi_runtime::engine::{self, Engine, EngineKind};
use kemi_runtime::export::KemiExport;
use kemi_runtime::msg::{RecvInfo, RouteEnv};
use kemi_runtime::sip::Message;
use kemi_runtime::table::Enabled;
use kemi_runtime::{ExportTable, SipMsg};

pub const REQUEST: &[u8] = b"INVITE sip:bob@example.com;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.1:5060;ob>;expires=60\r\n\
Route: <sip:127.0.0.1;lr>\r\n\
Record-Route: <sip:p1.example.com;lr>\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:bob@example.com\", response=\"0123456789abcdef0123456789abcdef\"\r\n\
Supported: path, outbound\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

pub const REPLY: &[u8] = b"SIP/2.0 486 Busy Here\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsd.t1.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060\r\n\
To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n";

/// One worker's state: the table, the engine, the route environment, every export's name.
struct Fixture {
    engine: Box<dyn Engine>,
    env: Arc<RouteEnv>,
    names: Vec<String>,
    runs: u32,
}

/// Runs after which the stateful modules start afresh, so that what inputs register or store
/// (usrloc bindings, htable items) cannot grow without bound over millions of runs.
const FRESH_SERVICES_EVERY: u32 = 4096;

fn route_env() -> Arc<RouteEnv> {
    let rcv = RecvInfo::default();
    Arc::new(RouteEnv {
        listen: vec![(rcv.proto, rcv.dst)],
        services: sipd::modsetup::offline_services().expect("offline services"),
        ..RouteEnv::default()
    })
}

thread_local! {
    static FIXTURE: std::cell::RefCell<Option<Fixture>> = const { std::cell::RefCell::new(None) };
}

/// Exports that touch the file system at a path the script names (`corex.file_read` of
/// `/dev/stdin` would block, `file_write` would create files wherever the fuzzer points):
/// left out of the fuzzed table, so `KSR.x.modf` cannot reach them either.
pub const LEFT_OUT: [(&str, &str); 2] = [("corex", "file_read"), ("corex", "file_write")];

/// The table `sipd` builds (`sipd::exports::build_table`), without [`LEFT_OUT`].
fn table() -> &'static Arc<ExportTable> {
    static TABLE: OnceLock<Arc<ExportTable>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let kept: Vec<KemiExport> = kemi_runtime::linked_exports()
            .iter()
            .filter(|e| !LEFT_OUT.contains(&(e.module, e.name)))
            .map(|e| KemiExport {
                module: e.module,
                name: e.name,
                ret: e.ret,
                params: e.params,
                param_names: e.param_names,
                doc: e.doc,
                call: e.call,
                file: e.file,
                line: e.line,
            })
            .collect();
        let kept: &'static [KemiExport] = Box::leak(kept.into_boxed_slice());
        let table = ExportTable::build(kept, &[&modules::MODULES], &Enabled::All);
        Arc::new(table.expect("export table"))
    })
}

fn fixture(kind: EngineKind, file: &str, script: &str) -> Fixture {
    let table = Arc::clone(table());
    let limits = ScriptLimits {
        instructions: Some(1_000_000),
        memory: Some(64 << 20),
    };
    let engine = engine::load_with(
        kind,
        file.as_ref(),
        Some(script.as_bytes()),
        Arc::clone(&table),
        limits,
    )
    .expect("fuzz script loads");
    let names = table.iter().map(|(_, e)| e.qualified_name()).collect();
    Fixture {
        engine,
        env: route_env(),
        names,
        runs: 0,
    }
}

/// Append `bytes` to `out` as a string the script's `unescape` restores.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '\x1b' | '\x1e' => {
                out.push('\x1b');
                out.push(char::from(c as u8 + 64));
            }
            c => out.push(c),
        }
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (now, rest) = data.split_at(n.min(data.len()));
    *data = rest;
    now
}

fn number(data: &mut &[u8]) -> [u8; 8] {
    let mut b = [0u8; 8];
    for (o, i) in b.iter_mut().zip(take(data, 8)) {
        *o = *i;
    }
    b
}

/// Run one input: decode the export and its arguments into the spec the script's `fuzz`
/// function reads (see the targets' scripts), and call it on the engine `kind` loaded from
/// `script` (named `file`), made once per thread.
pub fn run(kind: EngineKind, file: &str, script: &str, input: &[u8]) {
    let [pick, shape, rest @ ..] = input else {
        return;
    };
    let mut data: &[u8] = rest;
    FIXTURE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let fx = cell.get_or_insert_with(|| fixture(kind, file, script));
        fx.runs += 1;
        if fx.runs % FRESH_SERVICES_EVERY == 0 {
            fx.env = route_env();
        }
        let Some(name) = fx.names.get(usize::from(*pick) % fx.names.len().max(1)) else {
            return;
        };
        let mut spec = String::new();
        push_escaped(&mut spec, name.as_bytes());
        spec.push('\x1e');
        for _ in 0..(shape >> 1) & 7 {
            let Some((tag, rest)) = data.split_first() else {
                break;
            };
            data = rest;
            match tag % 10 {
                0 | 1 => {
                    let len = usize::from(take(&mut data, 1).first().copied().unwrap_or(0));
                    spec.push('s');
                    push_escaped(&mut spec, take(&mut data, len));
                }
                2 => {
                    let _ = write!(spec, "n{}", i64::from_le_bytes(number(&mut data)));
                }
                3 => {
                    let x = f64::from_le_bytes(number(&mut data));
                    let _ = match x {
                        x if x.is_nan() => write!(spec, "N"),
                        x if x == f64::INFINITY => write!(spec, "I"),
                        x if x == f64::NEG_INFINITY => write!(spec, "J"),
                        x if x == 0.0 && x.is_sign_negative() => write!(spec, "Z"),
                        x => write!(spec, "n{x:e}"),
                    };
                }
                4 => {
                    let small = take(&mut data, 1).first().copied().unwrap_or(0);
                    let _ = write!(spec, "n{}", i32::from(small as i8));
                }
                5 => spec.push('t'),
                6 => spec.push('f'),
                7 => {
                    let len = usize::from(take(&mut data, 1).first().copied().unwrap_or(0));
                    spec.push('T');
                    push_escaped(&mut spec, take(&mut data, len));
                }
                8 => spec.push('F'),
                _ => spec.push('x'),
            }
            spec.push('\x1e');
        }
        let reply = shape & 1 == 1;
        let raw = if reply { REPLY } else { REQUEST };
        let Ok(message) = Message::parse(Bytes::from_static(raw)) else {
            return;
        };
        let mut msg = SipMsg::new(message, RecvInfo::default(), Arc::clone(&fx.env));
        msg.captured_logs = Some(Vec::new());
        // A script error (a wrong argument, a missing export) is an answer, not a bug.
        let _ = fx.engine.run("fuzz", &mut msg, Some(&spec));
    });
}
