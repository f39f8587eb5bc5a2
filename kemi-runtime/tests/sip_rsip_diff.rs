//! Differential test against `rsip` 0.4 as an oracle: over the well-formed corpus messages
//! (INDEX `valid` and `valid-but-tricky`), count how many each parser accepts, and where both
//! accept compare method, Request-URI, status code and Call-ID.
//!
//! Run with the counts shown:
//! `cargo test -p kemi-runtime --test sip_rsip_diff -- --nocapture`

use std::fs;
use std::path::Path;

use bytes::Bytes;
use kemi_runtime::sip::Message;
use rsip::prelude::{HeadersExt, UntypedHeader};

#[test]
fn rsip_oracle_agrees_where_both_accept() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let (mut total, mut ours, mut theirs, mut both) = (0, 0, 0, 0);
    let mut ruri_differs = Vec::new();
    let mut rsip_rejects = Vec::new();
    for dir in ["rfc4475", "rfc5118"] {
        let index = fs::read_to_string(root.join(dir).join("INDEX.tsv")).expect("INDEX.tsv");
        for line in index.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let [file, _, expected, ..] = cols[..] else {
                continue;
            };
            if !matches!(expected, "valid" | "valid-but-tricky") {
                continue;
            }
            total += 1;
            let bytes = fs::read(root.join(dir).join(file)).expect("read");
            let mine = Message::parse(Bytes::from(bytes.clone())).ok();
            ours += usize::from(mine.is_some());
            let oracle =
                std::panic::catch_unwind(|| rsip::SipMessage::try_from(bytes.as_slice()).ok())
                    .ok()
                    .flatten();
            let Some(oracle) = oracle else {
                rsip_rejects.push(file.to_string());
                continue;
            };
            theirs += 1;
            let Some(mine) = mine else { continue };
            both += 1;
            match &oracle {
                rsip::SipMessage::Request(r) => {
                    assert!(mine.is_request(), "{file}");
                    assert_eq!(
                        mine.method_str(),
                        Some(r.method().to_string().as_str()),
                        "{file}: method"
                    );
                    if mine.ruri() != Some(r.uri().to_string().as_str()) {
                        ruri_differs.push(format!(
                            "{file}: ours {:?} rsip {:?}",
                            mine.ruri(),
                            r.uri().to_string()
                        ));
                    }
                }
                rsip::SipMessage::Response(r) => {
                    assert_eq!(
                        mine.status(),
                        Some(r.status_code().code()),
                        "{file}: status"
                    );
                }
            }
            if let Ok(cid) = oracle.call_id_header() {
                assert_eq!(mine.call_id(), Some(cid.value().trim()), "{file}: Call-ID");
            }
        }
    }
    println!("well-formed corpus messages: {total}");
    println!("accepted by sipd: {ours}");
    println!("accepted by rsip 0.4: {theirs}");
    println!("accepted by both: {both} (method/status/Call-ID equal in all)");
    println!(
        "R-URI text differs (rsip re-renders the URI): {}",
        ruri_differs.len()
    );
    for d in &ruri_differs {
        println!("  {d}");
    }
    println!("rejected by rsip: {}", rsip_rejects.join(" "));
    assert_eq!(ours, total, "sipd must accept every well-formed message");
    assert!(
        theirs < total,
        "rsip is known to reject some (IPv6 R-URIs, extension methods...)"
    );
}
