//! Digest credentials (`modules::auth::digest`): the one-pass scanner of an `Authorization` /
//! `Proxy-Authorization` value, the generic scheme + params split, algorithm names, and the
//! response computation over whatever the parser accepted (as `auth_check` does with a
//! subscriber's HA1), plus the stateless nonce check on the fuzzed nonce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modules::auth::digest::{self, Algorithm};
use modules::auth::nonce::Nonces;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    let _ = digest::params(s);
    let _ = Algorithm::parse(s);
    if let Ok(c) = digest::parse(s) {
        let _ = (c.user(), c.user_domain());
        let ha1 = digest::ha1(c.algorithm.0, c.user(), &c.realm, "secret");
        let expected = digest::expected_response(&c, &ha1, "REGISTER", b"body");
        assert_eq!(expected.len(), c.algorithm.0.hex_len());
        assert_eq!(
            digest::response_ok(&c, &ha1, "REGISTER", b"body"),
            digest::response_matches(&c.response, &expected)
        );
        let nonces = Nonces::new(b"fuzz-secret", 300, 3, 1);
        let _ = nonces.check(&c.nonce, 1_000_000);
    }
});
