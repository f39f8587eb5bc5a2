//! The accepted forms besides the parameter shapes: defaults, paths, patterns, lifetimes, docs,
//! `#[cfg]`, raw identifiers, exports made by `macro_rules!` and inside function bodies, and a
//! dispatch table built over them. The test crate has no linkme dependency: the expansion must
//! reach it through `kemi_runtime`.

#![deny(missing_docs, unused)]

use kemi_runtime::table::{Enabled, ModuleSet};
use kemi_runtime::{kemi, ExportTable, KemiRet, ParamType, RetType, SipMsg, Xval};

/// Core export, named after the function.
///
///     indented example line
#[kemi]
pub fn plain(_msg: &mut SipMsg) -> i32 {
    1
}

/** Block doc,
    trimmed. */
#[kemi(module = "", name = "renamed")]
pub(crate) fn explicit_core(_: &mut kemi_runtime::SipMsg, mut n: i32) -> bool {
    n += 1;
    n > 1
}

#[kemi(module = "feat")]
fn r#match<'a>(msg: &'a mut kemi_runtime::msg::SipMsg, key: &'a str, _: &'_ str) -> kemi_runtime::Xval {
    msg.route.flags = key.len() as u64;
    Xval::str(key)
}

#[kemi(module = "feat", name = "unit")]
#[allow(unused_parens)]
fn explicit_unit(_msg: &mut SipMsg, (n): (i32), s: &(str)) -> () {
    let _ = (n, s);
}

#[kemi(module = "feat", name = "setl")]
fn setl(msg: &mut SipMsg, _name: &str, value: i64) -> core::primitive::i32 {
    msg.route.flags = value as u64;
    1
}

#[cfg(any())]
#[kemi(module = "feat", name = "gone")]
fn gone(_msg: &mut SipMsg) {}

macro_rules! export_int {
    ($f:ident, $name:literal, $ty:ty) => {
        #[kemi(module = "feat", name = $name)]
        fn $f(_msg: &mut SipMsg, v: $ty) -> $ty {
            v * 2
        }
    };
}
export_int!(double, "double", i32);

fn main() {
    // An export defined in a function body is collected like any other.
    #[kemi(module = "feat", name = "nested")]
    fn local(_msg: &mut SipMsg) {}

    let exports: &'static [kemi_runtime::KemiExport] = &kemi_runtime::__private::KEMI_EXPORTS;
    let find = |module: &str, name: &str| {
        exports.iter().find(|e| e.module == module && e.name == name).unwrap_or_else(|| panic!("{module}.{name}"))
    };
    assert_eq!(exports.len(), 7);
    assert!(exports.iter().all(|e| e.name != "gone"));

    let e = find("", "plain");
    assert_eq!((e.ret, e.params), (RetType::Int, &[][..]));
    assert_eq!(e.doc, "Core export, named after the function.\n\n    indented example line");
    let e = find("", "renamed");
    assert_eq!((e.ret, e.params), (RetType::Bool, &[ParamType::Int][..]));
    assert_eq!(e.doc, "Block doc,\ntrimmed.");
    let e = find("feat", "match");
    assert_eq!((e.ret, e.params, e.doc), (RetType::Xval, &[ParamType::Str, ParamType::Str][..], ""));
    assert_eq!(find("feat", "unit").ret, RetType::None);
    assert_eq!(find("feat", "setl").params, &[ParamType::Str, ParamType::Long]);
    assert_eq!(find("feat", "double").params, &[ParamType::Int]);
    assert_eq!(find("feat", "nested").params, &[]);

    static SET: ModuleSet = ModuleSet { crate_name: "features", modules: &["", "feat"] };
    let table = ExportTable::build(exports, &[&SET], &Enabled::All).unwrap();
    let wire = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
                 From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: features\r\nCSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let message = kemi_runtime::sip::Message::parse(bytes::Bytes::from_static(wire)).unwrap();
    let mut msg = SipMsg::new(message, Default::default(), Default::default());
    let slot = table.lookup("feat", "match").unwrap();
    let args = [kemi_runtime::Arg::Str("abc"), kemi_runtime::Arg::Str("")];
    assert_eq!(table.call(slot, &mut msg, &args), Ok(KemiRet::Xval(Xval::str("abc"))));
    assert_eq!(msg.route.flags, 3);
    let slot = table.lookup("feat", "double").unwrap();
    assert_eq!(table.call(slot, &mut msg, &[kemi_runtime::Arg::Int(21)]), Ok(KemiRet::Int(42)));
    let _ = (plain, explicit_core, r#match, explicit_unit, setl, double, local);
}
