//! `KSR.auth.*` and `KSR.auth_db.*` through the export table, on services built by the real
//! setup (modparams, an in-memory store): challenge replies (401/407, realm, nonce, qop,
//! algorithm), right and wrong responses, unknown users, stale nonces (-4, then a challenge
//! with stale=true), replayed nonce counts, consume_credentials, has_credentials,
//! is_subscriber, the From/To check of auth_check.

use std::collections::BTreeMap;
use std::path::Path;

use kemi_runtime::msg::Action;
use kemi_runtime::services::Services;
use kemi_runtime::sip::HeaderEdit;
use kemi_runtime::{Arg, SipMsg};
use modules::auth::digest::Algorithm;
use modules::auth::nonce::Nonces;
use modules::modparam::{ModParams, ParamValue};
use modules::setup::{setup, SetupInput, StoreWriters};
use modules::store::Subscriber;

use crate::common::{env_with, i, msg, pv, s};

const REALM: &str = "example.com";
const SECRET: &str = "test-secret-0123456789";

/// Set up auth (with `auth` params) and auth_db (calculate_ha1 from `password`, as the basic
/// example), with alice/secret and bob (HA1 only) in the subscriber table.
fn services(auth: &[(&str, ParamValue)]) -> Services {
    let mut a = ModParams::new("auth").with("secret", ParamValue::Str(SECRET.into()));
    for (k, v) in auth {
        a.set(k, v.clone());
    }
    let db = ModParams::new("auth_db")
        .with("calculate_ha1", ParamValue::Int(1))
        .with("password_column", ParamValue::Str("password".into()))
        .with("cache_ttl", ParamValue::Int(0));
    let mut map = BTreeMap::new();
    map.insert("auth".to_string(), a);
    map.insert("auth_db".to_string(), db);
    let enabled = |m: &str| m == "auth" || m == "auth_db";
    let services = setup(&SetupInput {
        params: &map,
        enabled: &enabled,
        db_url: "sqlite::memory:",
        base_dir: Path::new("/"),
    })
    .unwrap_or_else(|e| panic!("setup: {e}"));
    let writers = services.get::<StoreWriters>().expect("store writers");
    let store = writers.0.first().expect("a store").1.store();
    store
        .put_subscriber(
            "subscriber",
            &Subscriber {
                username: "alice".into(),
                domain: REALM.into(),
                password: "secret".into(),
                ha1: Algorithm::Md5.hash(&[b"alice", REALM.as_bytes(), b"secret"]),
                ha1b: String::new(),
            },
        )
        .unwrap();
    services
}

fn request(method: &str, from_user: &str, to_user: &str, extra: &str) -> String {
    format!(
        "{method} sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{method}1\r\n\
         From: <sip:{from_user}@{REALM}>;tag=f1\r\n\
         To: <sip:{to_user}@{REALM}>\r\n\
         Call-ID: auth-{method}\r\n\
         CSeq: 2 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

fn message(services: &Services, text: &str) -> SipMsg {
    let mut m = msg(text);
    m.env = env_with(services.clone());
    m
}

/// The replies queued, as (code, wire text).
fn replies(m: &SipMsg) -> Vec<(u16, String)> {
    m.outbox
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some((r.code, String::from_utf8_lossy(&r.wire).into_owned())),
            Action::Forward(_) => None,
        })
        .collect()
}

/// The value of `param` in the challenge header `name` of `wire`.
fn challenge_param(wire: &str, name: &str, param: &str) -> Option<String> {
    let line = wire.lines().find(|l| {
        l.to_ascii_lowercase()
            .starts_with(&name.to_ascii_lowercase())
    })?;
    modules::pv::auth::digest_param(line.split_once(':')?.1.trim(), param).map(str::to_string)
}

/// A nonce from a real challenge.
fn fresh_nonce(services: &Services) -> String {
    let mut m = message(services, &request("REGISTER", "alice", "alice", ""));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "www_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        1
    );
    let (_, wire) = replies(&m).pop().expect("a challenge");
    challenge_param(&wire, "WWW-Authenticate", "nonce").expect("a nonce")
}

/// A credentials header as a UA computes it (independently of the module's code).
#[allow(clippy::too_many_arguments)]
fn credentials(
    hname: &str,
    alg: Algorithm,
    user: &str,
    password: &str,
    method: &str,
    nonce: &str,
    nc: Option<u32>,
) -> String {
    let uri = format!("sip:{REALM}");
    let ha1 = alg.hash(&[user.as_bytes(), REALM.as_bytes(), password.as_bytes()]);
    let ha2 = alg.hash(&[method.as_bytes(), uri.as_bytes()]);
    let algname = alg.name();
    match nc {
        Some(nc) => {
            let nc = format!("{nc:08x}");
            let resp = alg.hash(&[
                ha1.as_bytes(),
                nonce.as_bytes(),
                nc.as_bytes(),
                b"c0ffee",
                b"auth",
                ha2.as_bytes(),
            ]);
            format!(
                "{hname}: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
                 uri=\"{uri}\", response=\"{resp}\", algorithm={algname}, qop=auth, nc={nc}, \
                 cnonce=\"c0ffee\"\r\n"
            )
        }
        None => {
            let resp = alg.hash(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]);
            format!(
                "{hname}: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
                 uri=\"{uri}\", response=\"{resp}\", algorithm={algname}\r\n"
            )
        }
    }
}

fn auth_check(m: &mut SipMsg, flags: i32) -> i32 {
    i(
        m,
        "auth_db",
        "auth_check",
        &[Arg::Str(REALM), Arg::Str("subscriber"), Arg::Int(flags)],
    )
}

#[test]
fn challenge_replies() {
    let sv = services(&[]);
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", ""));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        1
    );
    let r = replies(&m);
    assert_eq!(r.len(), 1);
    let (code, wire) = &r[0];
    assert_eq!(*code, 401);
    assert!(wire.starts_with("SIP/2.0 401 Unauthorized\r\n"), "{wire}");
    assert_eq!(
        challenge_param(wire, "WWW-Authenticate", "realm").as_deref(),
        Some(REALM)
    );
    assert_eq!(
        challenge_param(wire, "WWW-Authenticate", "qop").as_deref(),
        Some("auth")
    );
    assert_eq!(
        challenge_param(wire, "WWW-Authenticate", "nonce").map(|n| n.len()),
        Some(48)
    );
    // MD5 by default, without an algorithm parameter (as Kamailio); no stale.
    assert!(challenge_param(wire, "WWW-Authenticate", "algorithm").is_none());
    assert!(challenge_param(wire, "WWW-Authenticate", "stale").is_none());
    // The challenge header is not left for later replies.
    assert!(m.route.reply_headers.is_empty());

    // Other methods get 407 with Proxy-Authenticate; flags 0: no qop.
    let mut m = message(&sv, &request("INVITE", "alice", "bob", ""));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(0)]
        ),
        1
    );
    let (code, wire) = replies(&m).pop().unwrap();
    assert_eq!(code, 407);
    assert!(wire.starts_with("SIP/2.0 407 Proxy Authentication Required\r\n"));
    assert!(challenge_param(&wire, "Proxy-Authenticate", "nonce").is_some());
    assert!(challenge_param(&wire, "Proxy-Authenticate", "qop").is_none());

    // The algorithm modparam (and auth_algorithm) put it in the challenge; 16 adds stale.
    let sv = services(&[("algorithm", ParamValue::Str("SHA-256".into()))]);
    let mut m = message(&sv, &request("OPTIONS", "alice", "bob", ""));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "www_challenge",
            &[Arg::Str(REALM), Arg::Int(16 | 2)]
        ),
        1
    );
    let (code, wire) = replies(&m).pop().unwrap();
    assert_eq!(code, 401);
    assert_eq!(
        challenge_param(&wire, "WWW-Authenticate", "algorithm").as_deref(),
        Some("SHA-256")
    );
    assert_eq!(
        challenge_param(&wire, "WWW-Authenticate", "qop").as_deref(),
        Some("auth-int")
    );
    assert_eq!(
        challenge_param(&wire, "WWW-Authenticate", "stale").as_deref(),
        Some("true")
    );
    assert_eq!(i(&mut m, "auth", "auth_algorithm", &[Arg::Str("MD5")]), 1);
    assert_eq!(
        i(&mut m, "auth", "auth_algorithm", &[Arg::Str("SHA-1")]),
        -1
    );
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_get_www_authenticate",
            &[Arg::Str(REALM), Arg::Int(1), Arg::Str("$var(wa)")]
        ),
        1
    );
    let kemi_runtime::Xval::Str(text) = pv(&mut m, "$var(wa)") else {
        panic!("$var(wa) is not a string");
    };
    assert!(
        text.starts_with("WWW-Authenticate: Digest realm=\"example.com\", nonce=\"")
            && text.ends_with(", algorithm=MD5, qop=\"auth\"\r\n"),
        "{text}"
    );
    // Empty realm: -1 and a 500 unless flags & 4; ACK and CANCEL are never challenged.
    let mut m = message(&sv, &request("INVITE", "alice", "bob", ""));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "proxy_challenge",
            &[Arg::Str(""), Arg::Int(4)]
        ),
        -1
    );
    assert!(replies(&m).is_empty());
    assert_eq!(
        i(
            &mut m,
            "auth",
            "proxy_challenge",
            &[Arg::Str(""), Arg::Int(0)]
        ),
        -1
    );
    assert_eq!(replies(&m)[0].0, 500);
    let mut m = message(&sv, &request("ACK", "alice", "bob", ""));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        1
    );
    assert!(replies(&m).is_empty());
}

#[test]
fn auth_check_accepts_the_right_response_and_consumes_it() {
    let sv = services(&[]);
    for (method, hname) in [
        ("REGISTER", "Authorization"),
        ("INVITE", "Proxy-Authorization"),
    ] {
        for nc in [None, Some(1)] {
            let nonce = fresh_nonce(&sv);
            let cred = credentials(hname, Algorithm::Md5, "alice", "secret", method, &nonce, nc);
            let mut m = message(&sv, &request(method, "alice", "alice", &cred));
            assert_eq!(auth_check(&mut m, 1), 1, "{method} {nc:?}");
            assert_eq!(pv(&mut m, "$au"), s("alice"));
            assert_eq!(pv(&mut m, "$ar"), s(REALM));
            assert_eq!(i(&mut m, "auth", "has_credentials", &[Arg::Str(REALM)]), 1);
            assert_eq!(
                i(
                    &mut m,
                    "auth",
                    "has_credentials",
                    &[Arg::Str("other.example")]
                ),
                -1
            );
            assert!(m.route.edits.is_empty());
            assert_eq!(i(&mut m, "auth", "consume_credentials", &[]), 1);
            let idx = m
                .message
                .headers()
                .find(|h| h.name == hname)
                .map(|h| h.index)
                .unwrap();
            assert_eq!(m.route.edits, vec![HeaderEdit::Remove(idx)]);
        }
    }
    // SHA-256 credentials (HA1 computed from the stored password).
    let nonce = fresh_nonce(&sv);
    let cred = credentials(
        "Authorization",
        Algorithm::Sha256,
        "alice",
        "secret",
        "REGISTER",
        &nonce,
        Some(1),
    );
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", &cred));
    assert_eq!(
        i(
            &mut m,
            "auth_db",
            "www_authenticate",
            &[Arg::Str(REALM), Arg::Str("subscriber")]
        ),
        1
    );
    // Without a successful authentication there is nothing to consume.
    let mut m = message(&sv, &request("INVITE", "alice", "bob", ""));
    assert_eq!(i(&mut m, "auth", "consume_credentials", &[]), -1);
    assert_eq!(i(&mut m, "auth", "has_credentials", &[Arg::Str(REALM)]), -1);
}

#[test]
fn failures_have_kamailios_codes() {
    let sv = services(&[]);
    let nonce = fresh_nonce(&sv);
    // No credentials: -5.
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", ""));
    assert_eq!(auth_check(&mut m, 1), -5);
    // Credentials for another realm only: -5.
    let other = credentials(
        "Authorization",
        Algorithm::Md5,
        "alice",
        "secret",
        "REGISTER",
        &nonce,
        None,
    )
    .replace("realm=\"example.com\"", "realm=\"other.example\"");
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", &other));
    assert_eq!(auth_check(&mut m, 1), -5);
    // Wrong password: -2.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "alice",
        "wrong",
        "REGISTER",
        &nonce,
        Some(1),
    );
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", &cred));
    assert_eq!(auth_check(&mut m, 1), -2);
    assert_eq!(i(&mut m, "auth", "consume_credentials", &[]), -1);
    // Unknown user: -3.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "mallory",
        "x",
        "REGISTER",
        &nonce,
        None,
    );
    let mut m = message(&sv, &request("REGISTER", "mallory", "mallory", &cred));
    assert_eq!(auth_check(&mut m, 1), -3);
    // A nonce we did not issue: -1.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "alice",
        "secret",
        "REGISTER",
        &"0".repeat(48),
        None,
    );
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", &cred));
    assert_eq!(auth_check(&mut m, 1), -1);
    // Malformed credentials: -1 and 400, as Kamailio.
    let mut m = message(
        &sv,
        &request(
            "REGISTER",
            "alice",
            "alice",
            "Authorization: Digest username=\"alice, realm\r\n",
        ),
    );
    assert_eq!(auth_check(&mut m, 1), -1);
    assert_eq!(replies(&m)[0].0, 400);
    // The auth user must be the To and From user of a REGISTER (flags 1), the From user of
    // the rest; flags 0 skips the check, flags 3 skips it for INVITE.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "alice",
        "secret",
        "REGISTER",
        &nonce,
        None,
    );
    let mut m = message(&sv, &request("REGISTER", "alice", "bob", &cred));
    assert_eq!(auth_check(&mut m, 1), -8);
    let mut m = message(&sv, &request("REGISTER", "alice", "bob", &cred));
    assert_eq!(auth_check(&mut m, 0), 1);
    let cred = credentials(
        "Proxy-Authorization",
        Algorithm::Md5,
        "alice",
        "secret",
        "INVITE",
        &nonce,
        None,
    );
    let mut m = message(&sv, &request("INVITE", "carol", "bob", &cred));
    assert_eq!(auth_check(&mut m, 1), -8);
    let mut m = message(&sv, &request("INVITE", "carol", "bob", &cred));
    assert_eq!(auth_check(&mut m, 3), 1);
    // ACK and CANCEL pass, as in Kamailio.
    let mut m = message(&sv, &request("CANCEL", "carol", "bob", ""));
    assert_eq!(auth_check(&mut m, 1), 1);
    // is_subscriber.
    let mut m = message(&sv, &request("OPTIONS", "alice", "bob", ""));
    let is_sub = |m: &mut SipMsg, uri: &str, flags: i32| {
        i(
            m,
            "auth_db",
            "is_subscriber",
            &[Arg::Str(uri), Arg::Str("subscriber"), Arg::Int(flags)],
        )
    };
    assert_eq!(is_sub(&mut m, "sip:alice@example.com", 1), 1);
    assert_eq!(is_sub(&mut m, "sip:alice@elsewhere.example", 0), 1);
    assert_eq!(is_sub(&mut m, "sip:alice@elsewhere.example", 1), -1);
    assert_eq!(is_sub(&mut m, "sip:bob@example.com", 1), -1);
    assert_eq!(is_sub(&mut m, "not a uri", 1), -1);
    assert_eq!(
        i(
            &mut m,
            "auth_db",
            "is_subscriber",
            &[
                Arg::Str("sip:alice@example.com"),
                Arg::Str("bad;table"),
                Arg::Int(1)
            ]
        ),
        -1
    );
}

#[test]
fn stale_nonce_is_rechallenged_with_stale_true() {
    let sv = services(&[]);
    let now = u32::try_from(modules::store::now_unix()).unwrap();
    let (old, _) = Nonces::new(SECRET.as_bytes(), 300, 3, 9).make(now - 1000);
    // A right digest on an expired nonce: -4, and the next challenge says stale=true.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "alice",
        "secret",
        "REGISTER",
        &old,
        Some(1),
    );
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", &cred));
    assert_eq!(auth_check(&mut m, 1), -4);
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        1
    );
    let (code, wire) = replies(&m).pop().unwrap();
    assert_eq!(code, 401);
    assert_eq!(
        challenge_param(&wire, "WWW-Authenticate", "stale").as_deref(),
        Some("true")
    );
    let fresh = challenge_param(&wire, "WWW-Authenticate", "nonce").unwrap();
    assert_ne!(fresh, old);
    // A wrong digest on an expired nonce: still -4 (Kamailio), but no stale=true.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "alice",
        "bad",
        "REGISTER",
        &old,
        Some(1),
    );
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", &cred));
    assert_eq!(auth_check(&mut m, 1), -4);
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        1
    );
    let (_, wire) = replies(&m).pop().unwrap();
    assert!(challenge_param(&wire, "WWW-Authenticate", "stale").is_none());
    // pv_* functions see the same nonce as stale too.
    let cred = credentials(
        "Proxy-Authorization",
        Algorithm::Md5,
        "alice",
        "secret",
        "INVITE",
        &old,
        None,
    );
    let mut m = message(&sv, &request("INVITE", "alice", "bob", &cred));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "pv_proxy_authenticate",
            &[Arg::Str(REALM), Arg::Str("secret"), Arg::Int(0)]
        ),
        -4
    );
}

#[test]
fn replayed_nonce_count_is_refused() {
    let sv = services(&[("nonce_count", ParamValue::Int(1))]);
    let nonce = fresh_nonce(&sv);
    let send = |nc: u32| {
        let cred = credentials(
            "Authorization",
            Algorithm::Md5,
            "alice",
            "secret",
            "REGISTER",
            &nonce,
            Some(nc),
        );
        let mut m = message(&sv, &request("REGISTER", "alice", "alice", &cred));
        let r = auth_check(&mut m, 1);
        (r, m)
    };
    assert_eq!(send(1).0, 1);
    let (r, mut m) = send(1);
    assert_eq!(r, -6);
    // The re-challenge of a replay with a right digest says stale=true.
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        1
    );
    let (_, wire) = replies(&m).pop().unwrap();
    assert_eq!(
        challenge_param(&wire, "WWW-Authenticate", "stale").as_deref(),
        Some("true")
    );
    assert_eq!(send(2).0, 1);
    assert_eq!(send(2).0, -6);
    assert_eq!(send(1).0, -6);
    assert_eq!(send(7).0, 1);
}

#[test]
fn pv_authenticate_with_script_passwords() {
    let sv = services(&[]);
    let nonce = fresh_nonce(&sv);
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "bob",
        "pw",
        "REGISTER",
        &nonce,
        Some(1),
    );
    let pv_www = |m: &mut SipMsg, pw: &str, flags: i32| {
        i(
            m,
            "auth",
            "pv_www_authenticate",
            &[Arg::Str(REALM), Arg::Str(pw), Arg::Int(flags)],
        )
    };
    let mut m = message(&sv, &request("REGISTER", "bob", "bob", &cred));
    assert_eq!(pv_www(&mut m, "pw", 0), 1);
    let mut m = message(&sv, &request("REGISTER", "bob", "bob", &cred));
    assert_eq!(pv_www(&mut m, "nope", 0), -2);
    // flags 1: the password is an HA1.
    let ha1 = Algorithm::Md5.hash(&[b"bob", REALM.as_bytes(), b"pw"]);
    let mut m = message(&sv, &request("REGISTER", "bob", "bob", &cred));
    assert_eq!(pv_www(&mut m, &ha1, 1), 1);
    // Proxy credentials are not WWW credentials.
    let mut m = message(
        &sv,
        &request(
            "REGISTER",
            "bob",
            "bob",
            &cred.replace("Authorization", "Proxy-Authorization"),
        ),
    );
    assert_eq!(pv_www(&mut m, "pw", 0), -5);
    // The method given replaces the request's in the digest.
    let cred = credentials(
        "Authorization",
        Algorithm::Md5,
        "bob",
        "pw",
        "INVITE",
        &nonce,
        Some(2),
    );
    let mut m = message(&sv, &request("REGISTER", "bob", "bob", &cred));
    assert_eq!(
        i(
            &mut m,
            "auth",
            "pv_www_authenticate_method",
            &[
                Arg::Str(REALM),
                Arg::Str("pw"),
                Arg::Int(0),
                Arg::Str("INVITE")
            ]
        ),
        1
    );
    // pv_auth_check: with checks 1 the From user must be the auth user.
    let cred = credentials(
        "Proxy-Authorization",
        Algorithm::Md5,
        "bob",
        "pw",
        "MESSAGE",
        &nonce,
        None,
    );
    let check = |m: &mut SipMsg, checks: i32| {
        i(
            m,
            "auth",
            "pv_auth_check",
            &[
                Arg::Str(REALM),
                Arg::Str("pw"),
                Arg::Int(0),
                Arg::Int(checks),
            ],
        )
    };
    let mut m = message(&sv, &request("MESSAGE", "bob", "alice", &cred));
    assert_eq!(check(&mut m, 1), 1);
    let mut m = message(&sv, &request("MESSAGE", "eve", "alice", &cred));
    assert_eq!(check(&mut m, 1), -8);
    let mut m = message(&sv, &request("MESSAGE", "eve", "alice", &cred));
    assert_eq!(check(&mut m, 0), 1);
}

#[test]
fn without_setup_every_function_fails_cleanly() {
    let sv = Services::new();
    let mut m = message(&sv, &request("REGISTER", "alice", "alice", ""));
    assert_eq!(auth_check(&mut m, 1), -1);
    assert_eq!(
        i(
            &mut m,
            "auth",
            "auth_challenge",
            &[Arg::Str(REALM), Arg::Int(1)]
        ),
        -1
    );
    assert_eq!(
        i(
            &mut m,
            "auth_db",
            "is_subscriber",
            &[Arg::Str("sip:a@b"), Arg::Str("subscriber"), Arg::Int(1)]
        ),
        -1
    );
    assert!(replies(&m).is_empty());
}

#[test]
fn setup_refuses_bad_modparams() {
    let try_auth = |k: &str, v: ParamValue| {
        let mut map = BTreeMap::new();
        map.insert("auth".to_string(), ModParams::new("auth").with(k, v));
        let enabled = |m: &str| m == "auth";
        setup(&SetupInput {
            params: &map,
            enabled: &enabled,
            db_url: "sqlite::memory:",
            base_dir: Path::new("/"),
        })
        .map(drop)
        .map_err(|e| e.to_string())
    };
    assert!(try_auth("nonce_expire", ParamValue::Int(600)).is_ok());
    assert!(try_auth("nosuch", ParamValue::Int(1))
        .unwrap_err()
        .contains("unknown parameter"));
    assert!(try_auth("algorithm", ParamValue::Str("SHA-1".into())).is_err());
    assert!(try_auth("qop", ParamValue::Str("x".into())).is_err());
    assert!(try_auth("nonce_expire", ParamValue::Int(0)).is_err());
    assert!(try_auth("auth_checks_register", ParamValue::Int(11)).is_err());
    let try_db = |k: &str, v: ParamValue| {
        let mut map = BTreeMap::new();
        map.insert("auth_db".to_string(), ModParams::new("auth_db").with(k, v));
        let enabled = |m: &str| m == "auth_db";
        setup(&SetupInput {
            params: &map,
            enabled: &enabled,
            db_url: "sqlite::memory:",
            base_dir: Path::new("/"),
        })
        .map(drop)
        .map_err(|e| e.to_string())
    };
    assert!(try_db("load_credentials", ParamValue::Str("".into())).is_ok());
    assert!(try_db("password_column", ParamValue::Str("password".into())).is_ok());
    assert!(try_db("password_column", ParamValue::Str("secret".into())).is_err());
    assert!(try_db("load_credentials", ParamValue::Str("rpid".into())).is_err());
    assert!(try_db("user_column", ParamValue::Str("user".into())).is_err());
    assert!(try_db("nosuch", ParamValue::Int(1)).is_err());
}
