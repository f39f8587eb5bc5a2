//! The KEMI argument conversions of the Python engine (CPython through `pyo3`), through the
//! real engine (`kemi_runtime::engine`) and every export sipd links (less the two file
//! exports, see `kemi_args::LEFT_OUT`): the input picks an export and up to seven arguments
//! of any Python type (strings with any characters, ints of any size such as 2^63 and
//! -2^63-1, floats such as -0.0, nan and inf, booleans, None, lists, functions), and a script
//! calls `KSR.<module>.<name>(...)` with them on a sample request or reply. A raised exception
//! is the expected answer to a wrong argument; a panic, an abort or a hang is a bug.
//!
//! Input layout and the spec the script decodes: `common/kemi_args.rs` (the same inputs as
//! `lua_kemi_args`, so their corpora are interchangeable).
#![no_main]

use kemi_runtime::engine::EngineKind;
use libfuzzer_sys::fuzz_target;

#[path = "common/kemi_args.rs"]
mod kemi_args;

/// The script (plain style: module-level functions): `fuzz(spec)` decodes the export name
/// and its arguments and calls it. An integer part whose last digit is odd is pushed past
/// 64 bits (`* 2**64`), so ints that fit no C integer reach the conversions too.
const SCRIPT: &str = r#"
import re
import KSR

_ESC = re.compile("\x1b(.)", re.S)
_INT = re.compile("-?[0-9]+")


def ksr_request_route():
    return 1


def ksr_reply_route():
    return 1


def _unescape(s):
    return _ESC.sub(lambda m: chr(ord(m.group(1)) - 64), s)


def fuzz(spec):
    parts = spec.split("\x1e")[:-1]
    name = parts[0]
    if "." in name:
        mod, fn = name.split(".", 1)
        f = getattr(getattr(KSR, mod, None), fn, None)
    else:
        f = getattr(KSR, name, None)
    if not callable(f):
        raise Exception("no export " + name)
    args = []
    for p in parts[1:]:
        tag, v = p[:1], p[1:]
        if tag == "s":
            args.append(_unescape(v))
        elif tag == "n":
            if _INT.fullmatch(v):
                n = int(v)
                args.append(n * 2**64 if n % 2 else n)
            else:
                args.append(float(v))
        elif tag == "I":
            args.append(float("inf"))
        elif tag == "J":
            args.append(float("-inf"))
        elif tag == "N":
            args.append(float("nan"))
        elif tag == "Z":
            args.append(-0.0)
        elif tag == "t":
            args.append(True)
        elif tag == "f":
            args.append(False)
        elif tag == "T":
            args.append([_unescape(v)])
        elif tag == "F":
            args.append(print)
        else:
            args.append(None)
    f(*args)
"#;

fuzz_target!(|input: &[u8]| {
    kemi_args::run(EngineKind::Python, "fuzz.py", SCRIPT, input);
});
