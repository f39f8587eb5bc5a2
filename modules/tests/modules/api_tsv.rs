//! Every export must match Kamailio's API list (`tests/data/kemi-api.tsv`, a copy of
//! `kemi-api.tsv`): same module, name, return kind and parameter kinds.

use std::collections::HashMap;

use crate::common::table;

const TSV: &str = include_str!("../data/kemi-api.tsv");

/// (module, function) -> (return type, param types), from the TSV.
fn reference() -> HashMap<(&'static str, &'static str), (&'static str, &'static str)> {
    TSV.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let module = cols.next()?;
            let name = cols.next()?;
            let ret = cols.next()?;
            let params = cols.next().unwrap_or("");
            Some(((module, name), (ret, params)))
        })
        .collect()
}

#[test]
fn every_export_matches_the_kamailio_api() {
    let api = reference();
    assert!(api.len() > 800, "the TSV copy looks truncated");
    let mut checked = 0;
    for (_, e) in table().iter() {
        let Some((ret, params)) = api.get(&(e.module, e.name)) else {
            panic!("{} is not a Kamailio export", e.qualified_name());
        };
        assert_eq!(
            e.ret.as_str(),
            *ret,
            "return kind of {}",
            e.qualified_name()
        );
        let ours: Vec<&str> = e.params.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            ours.join(","),
            *params,
            "parameter kinds of {}",
            e.qualified_name()
        );
        assert!(
            !e.doc.is_empty(),
            "{} has no doc comment",
            e.qualified_name()
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} exports found");
}

/// The modules that are complete here export all of Kamailio's functions; the core and `sl`
/// leave out only what needs the network or transactions.
#[test]
fn modules_are_complete() {
    let missing_ok = [
        "forward",
        "forward_uri",
        "set_forward_close",
        "set_forward_no_connect",
        "set_reply_close",
        "set_reply_no_connect",
        "set_advertised_address",
        "set_advertised_port",
        "add_tcp_alias",
        "add_tcp_alias_via",
        "to_UDP",
        "to_TCP",
        "to_TLS",
        "to_SCTP",
        "to_WS",
        "to_WSS",
        "to_WSX",
        "to_IPv4",
        "to_IPv6",
        "route",
        "add_local_rport",
        "sl_forward_reply",
    ];
    let t = table();
    for (module, name) in reference().keys() {
        if ["", "pv", "hdr", "sl", "maxfwd"].contains(module) && !missing_ok.contains(name) {
            assert!(
                t.lookup(module, name).is_some(),
                "missing export {module}.{name}"
            );
        }
    }
}
