//! The KEMI argument conversions of the JavaScript engine (QuickJS through `rquickjs`),
//! through the real engine (`kemi_runtime::engine`) and every export sipd links (less the two
//! file exports, see `kemi_args::LEFT_OUT`): the input picks an export and up to seven
//! arguments of any JavaScript type (strings with any characters, numbers such as 2^63, -0,
//! NaN and Infinity, BigInts, booleans, null and undefined, arrays, functions), and a script
//! calls `KSR.<module>.<name>(...)` with them on a sample request or reply. A thrown error is
//! the expected answer to a wrong argument; a panic, an abort or a hang is a bug.
//!
//! Input layout and the spec the script decodes: `common/kemi_args.rs` (the same inputs as
//! `lua_kemi_args`, so their corpora are interchangeable).
#![no_main]

use kemi_runtime::engine::EngineKind;
use libfuzzer_sys::fuzz_target;

#[path = "common/kemi_args.rs"]
mod kemi_args;

/// The script: `fuzz(spec)` decodes the export name and its arguments and calls it. An
/// integer part of odd length becomes a BigInt, so both numeric types reach the conversions;
/// `x` alternates between null and undefined by position.
const SCRIPT: &str = r#"
function ksr_request_route() {}
function ksr_reply_route() {}

function unescape(s) {
    return s.replace(/\x1b([\s\S])/g, function (_, c) {
        return String.fromCharCode(c.charCodeAt(0) - 64);
    });
}

function fuzz(spec) {
    var parts = spec.split("\x1e");
    parts.pop();
    var name = parts[0];
    var dot = name.indexOf(".");
    var self = KSR;
    var f;
    if (dot >= 0) {
        self = KSR[name.slice(0, dot)];
        f = self && self[name.slice(dot + 1)];
    } else {
        f = KSR[name];
    }
    if (typeof f !== "function") throw new Error("no export " + name);
    var args = [];
    for (var i = 1; i < parts.length; i++) {
        var p = parts[i], tag = p.charAt(0), v = p.slice(1);
        switch (tag) {
        case "s": args.push(unescape(v)); break;
        case "n":
            args.push(/^-?[0-9]+$/.test(v) && v.length % 2 === 1 ? BigInt(v) : Number(v));
            break;
        case "I": args.push(Infinity); break;
        case "J": args.push(-Infinity); break;
        case "N": args.push(NaN); break;
        case "Z": args.push(-0); break;
        case "t": args.push(true); break;
        case "f": args.push(false); break;
        case "T": args.push([unescape(v)]); break;
        case "F": args.push(function () {}); break;
        default: args.push(i % 2 ? null : undefined);
        }
    }
    f.apply(self, args);
}
"#;

fuzz_target!(|input: &[u8]| {
    kemi_args::run(EngineKind::Jsdt, "fuzz.js", SCRIPT, input);
});
