//! `KSR.corex.*`: R-URI user and User-Agent tests, and the file helpers.

use kemi_runtime::{Arg, Xval};

use crate::common::{i, msg, request, s, x, INVITE, RINGING};

#[test]
fn ruri_user_and_user_agent() {
    let mut inv = msg(INVITE);
    assert_eq!(i(&mut inv, "corex", "has_ruri_user", &[]), 1);
    assert_eq!(i(&mut inv, "corex", "has_user_agent", &[]), 1);
}

#[test]
fn rewritten_ruri_counts_and_replies_have_none() {
    let mut m = msg(&request("OPTIONS", ""));
    assert_eq!(i(&mut m, "corex", "has_ruri_user", &[]), -1);
    assert_eq!(i(&mut m, "corex", "has_user_agent", &[]), -1);
    m.route.new_ruri = Some("sip:carol@proxy.example.com".into());
    assert_eq!(i(&mut m, "corex", "has_ruri_user", &[]), 1);
    assert_eq!(i(&mut msg(RINGING), "corex", "has_ruri_user", &[]), -1);
}

#[test]
fn file_write_then_read() {
    let dir = std::env::temp_dir().join(format!("sipd-corex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("note.txt");
    let path = path.to_str().unwrap_or_else(|| unreachable!());
    let mut m = msg(INVITE);
    assert_eq!(
        i(
            &mut m,
            "corex",
            "file_write",
            &[Arg::Str(path), Arg::Str("hello\n")]
        ),
        1
    );
    assert_eq!(
        x(&mut m, "corex", "file_read", &[Arg::Str(path)]),
        s("hello\n")
    );
    assert_eq!(
        i(
            &mut m,
            "corex",
            "file_write",
            &[Arg::Str(path), Arg::Str("again")]
        ),
        1
    );
    assert_eq!(
        x(&mut m, "corex", "file_read", &[Arg::Str(path)]),
        s("again"),
        "replaced, not appended"
    );
    let missing = dir.join("missing/none.txt");
    let missing = missing.to_str().unwrap_or_else(|| unreachable!());
    assert_eq!(
        x(&mut m, "corex", "file_read", &[Arg::Str(missing)]),
        Xval::Null
    );
    assert_eq!(
        i(
            &mut m,
            "corex",
            "file_write",
            &[Arg::Str(missing), Arg::Str("x")]
        ),
        -1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
