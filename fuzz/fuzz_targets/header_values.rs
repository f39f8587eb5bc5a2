//! The header-value parsers a route reaches through exports: Via, URI (and percent-decoding),
//! name-addr (From/To/Contact shapes), `;params` lists, CSeq, decimals, unfolding, methods and
//! header names. Byte 0 picks the parser, the rest (as UTF-8, lossily) is the value.
#![no_main]

use kemi_runtime::sip::{
    parse_decimal, percent_decode, unfold, CSeq, HeaderKind, Method, NameAddr, Params, Uri, Via,
};
use libfuzzer_sys::fuzz_target;

fn uri(u: &Uri<'_>) {
    let _ = (
        u.kind(),
        u.host_unbracketed(),
        u.param("lr"),
        u.params.has_empty(),
    );
    for p in u.params.iter() {
        let _ = (p.name, p.value);
    }
    let _ = percent_decode(u.user.unwrap_or_default());
    assert!(u.raw.len() >= u.host.len());
}

fn params(p: Params<'_>) {
    let _ = (
        p.is_empty(),
        p.has_empty(),
        p.get("tag"),
        p.has("lr"),
        p.find("branch"),
    );
    for q in p.iter() {
        assert!(!q.name.is_empty() || q.value.is_some() || p.as_str().contains(';'));
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let s: &str = &text;
    match which % 8 {
        0 => {
            if let Ok(v) = Via::parse(s) {
                let _ = (v.branch(), v.received(), v.rport(), v.host_unbracketed());
                let _ = v.param("maddr");
                params(v.params);
            }
        }
        1 => {
            if let Ok(u) = Uri::parse(s) {
                uri(&u);
            }
        }
        2 => {
            if let Ok(na) = NameAddr::parse(s, "To") {
                let _ = (na.display_unquoted(), na.tag(), na.is_star(), na.param("q"));
                if let Ok(u) = na.parsed_uri() {
                    uri(&u);
                }
            }
        }
        3 => params(Params::new(s)),
        4 => {
            let _ = CSeq::parse(s);
            let _ = parse_decimal(s);
        }
        5 => {
            let u = unfold(s);
            assert!(!u.contains('\n') || !s.contains('\n') || u.len() <= s.len());
            let _ = percent_decode(s);
        }
        6 => {
            let _ = Method::parse(s).as_str();
            let _ = HeaderKind::from_name(s);
            let _ = HeaderKind::from_bytes(rest);
        }
        _ => {
            // Several values at once, as a Contact list would be.
            for part in s.split(',') {
                let _ = NameAddr::parse(part, "Contact").map(|na| na.parsed_uri());
            }
        }
    }
});
