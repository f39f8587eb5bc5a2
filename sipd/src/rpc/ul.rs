//! usrloc RPC methods with Kamailio's names and result shapes: `ul.dump`,
//! `ul.lookup <table> <aor>`, `ul.rm <table> <aor>`, `ul.rm_contact <table> <aor> <contact>`,
//! `ul.flush`.

use std::sync::Arc;

use kemi_runtime::services::Services;
use modules::registrar::usrloc::{Contact, Table};
use modules::registrar::Registrar;
use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// The usrloc methods (answered when the registrar is set up).
pub const METHODS: [&str; 5] = ["ul.dump", "ul.flush", "ul.lookup", "ul.rm", "ul.rm_contact"];

fn not_set(v: &str) -> Value {
    if v.is_empty() {
        json!("[not set]")
    } else {
        json!(v)
    }
}

fn contact_json(c: &Contact, now: i64) -> Value {
    let expires = if c.expires == 0 {
        json!("permanent")
    } else if c.expires <= now {
        json!("expired")
    } else {
        json!(c.expires - now)
    };
    json!({ "Contact": {
        "Address": &*c.uri,
        "Expires": expires,
        "Q": c.q,
        "Call-ID": &*c.callid,
        "CSeq": c.cseq,
        "User-Agent": not_set(&c.user_agent),
        "Received": not_set(&c.received),
        "Path": not_set(&c.path),
        "State": "CS_SYNC",
        "Flags": c.flags,
        "CFlags": c.cflags,
        "Socket": not_set(&c.socket),
        "Methods": c.methods,
        "Ruid": &*c.ruid,
        "Instance": not_set(&c.instance),
        "Reg-Id": c.reg_id,
        "Server-Id": 0,
        "Tcpconn-Id": -1,
        "Keepalive": 0,
        "Last-Modified": c.last_modified,
    }})
}

fn str_param<'a>(
    method: &str,
    params: &'a [Value],
    i: usize,
    what: &str,
) -> Result<&'a str, RpcError> {
    params.get(i).and_then(Value::as_str).ok_or_else(|| {
        RpcError::params(format!(
            "{method}: parameter {} ({what}) must be a string",
            i + 1
        ))
    })
}

fn table(reg: &Registrar, name: &str) -> Result<Arc<Table>, RpcError> {
    reg.ul
        .get(name)
        .ok_or_else(|| RpcError::new(500, format!("table `{name}` not found")))
}

/// The AoR key as `save` stores it (`sip:` URIs and bare `user[@domain]` both accepted).
fn aor_key(reg: &Registrar, aor: &str) -> Option<String> {
    if aor.contains(':') {
        reg.aor_of(aor)
    } else if aor.contains('@') {
        reg.aor_of(&format!("sip:{aor}"))
    } else if reg.cfg.case_sensitive {
        Some(aor.to_string())
    } else {
        Some(aor.to_ascii_lowercase())
    }
}

/// Run usrloc method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    let Some(reg) = services.get::<Registrar>() else {
        return Some(Err(RpcError::new(
            500,
            "usrloc is not set up (enable the registrar module)",
        )));
    };
    Some(run(reg, method, params))
}

fn run(reg: &Registrar, method: &str, params: &[Value]) -> Result<Value, RpcError> {
    let now = modules::store::now_unix();
    match method {
        "ul.dump" => {
            let domains: Vec<Value> = reg
                .ul
                .tables()
                .iter()
                .map(|t| {
                    let recs = t.dump();
                    let aors: Vec<Value> = recs
                        .iter()
                        .map(|(aor, cs)| {
                            json!({ "Info": {
                                "AoR": aor,
                                "Contacts": cs.iter().map(|c| contact_json(c, now)).collect::<Vec<_>>(),
                            }})
                        })
                        .collect();
                    json!({ "Domain": {
                        "Domain": t.name(),
                        "AoRs": aors,
                        "Stats": { "Records": recs.len() },
                    }})
                })
                .collect();
            Ok(json!({ "Domains": domains }))
        }
        "ul.flush" => {
            reg.ul.sweep(now);
            Ok(Value::Null)
        }
        "ul.lookup" => {
            let t = table(reg, str_param(method, params, 0, "table")?)?;
            let aor = str_param(method, params, 1, "AoR")?;
            let key = aor_key(reg, aor).ok_or_else(|| RpcError::params("bad AoR"))?;
            let cs = t.valid(&key, now);
            if cs.is_empty() {
                return Err(RpcError::new(404, "AOR not found"));
            }
            Ok(json!({
                "AoR": key,
                "Contacts": cs.iter().map(|c| contact_json(c, now)).collect::<Vec<_>>(),
            }))
        }
        "ul.rm" => {
            let t = table(reg, str_param(method, params, 0, "table")?)?;
            let aor = str_param(method, params, 1, "AoR")?;
            let key = aor_key(reg, aor).ok_or_else(|| RpcError::params("bad AoR"))?;
            if reg.ul.remove_aor(&t, &key) == 0 {
                return Err(RpcError::new(404, "AOR not found"));
            }
            Ok(Value::Null)
        }
        "ul.rm_contact" => {
            let t = table(reg, str_param(method, params, 0, "table")?)?;
            let aor = str_param(method, params, 1, "AoR")?;
            let contact = str_param(method, params, 2, "contact")?;
            let key = aor_key(reg, aor).ok_or_else(|| RpcError::params("bad AoR"))?;
            if !reg.ul.remove_contact(&t, &key, contact, false) {
                return Err(RpcError::new(404, "Contact not found"));
            }
            Ok(Value::Null)
        }
        _ => Err(RpcError::new(-32601, format!("method not found: {method}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn services() -> Services {
        let params = BTreeMap::new();
        let enabled = |m: &str| m == "registrar";
        modules::setup::setup(&modules::setup::SetupInput {
            params: &params,
            enabled: &enabled,
            db_url: "sqlite::memory:",
            base_dir: Path::new("/tmp"),
        })
        .unwrap()
    }

    #[test]
    fn dump_lookup_rm() {
        let sv = services();
        let reg = sv.get::<Registrar>().unwrap();
        let t = reg.ul.table("location").unwrap();
        t.write("alice", |rec| {
            rec.push(Contact {
                ruid: "r1".into(),
                uri: "sip:alice@127.0.0.1:5070".into(),
                expires: modules::store::now_unix() + 100,
                ..Contact::default()
            })
        });
        let d = call(&sv, "ul.dump", &[]).unwrap().unwrap();
        assert_eq!(d["Domains"][0]["Domain"]["AoRs"][0]["Info"]["AoR"], "alice");
        let l = call(&sv, "ul.lookup", &[json!("location"), json!("alice")])
            .unwrap()
            .unwrap();
        assert_eq!(
            l["Contacts"][0]["Contact"]["Address"],
            "sip:alice@127.0.0.1:5070"
        );
        let l = call(
            &sv,
            "ul.lookup",
            &[json!("location"), json!("sip:alice@example.com")],
        )
        .unwrap();
        assert!(l.is_ok());
        let e = call(&sv, "ul.lookup", &[json!("location"), json!("bob")])
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, 404);
        assert!(call(
            &sv,
            "ul.rm_contact",
            &[json!("location"), json!("alice"), json!("sip:x")]
        )
        .unwrap()
        .is_err());
        assert!(call(&sv, "ul.rm", &[json!("location"), json!("alice")])
            .unwrap()
            .is_ok());
        assert!(call(&sv, "ul.lookup", &[json!("location"), json!("alice")])
            .unwrap()
            .is_err());
        assert!(call(&sv, "ul.rm", &[json!("nosuch"), json!("alice")])
            .unwrap()
            .is_err());
        assert!(call(&sv, "ul.other", &[]).is_none());
        assert!(call(&Services::new(), "ul.dump", &[]).unwrap().is_err());
    }
}
