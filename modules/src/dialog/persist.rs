//! Confirmed dialogs in the store (`db_mode = 1`), so a restart does not forget the calls in
//! progress. A dialog is one row of a hash-table-shaped table (`table_name`, `dialog` by
//! default; the store's `htable` rows: the trait stays as it is): the key is the Call-ID and
//! the caller's tag, the value a JSON object with what the dialog learned (legs, state,
//! timeout, profiles, variables, flags), the expiry its deadline. The row is written (behind
//! the message path, by the store's writer) when the dialog is confirmed and when the ACK, a
//! timeout, a profile, a variable or a flag change it, and deleted when it ends. At startup the
//! rows not expired are loaded back: the dialogs are in the table, counted, in their profiles,
//! with the rest of their timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use kemi_runtime::msg::Proto;
use serde_json::{json, Value};

use super::state::{DlgInner, DlgState, Leg};
use crate::store::{HtableRow, HtableValue, Writer};

/// Where dialogs are written.
#[derive(Debug)]
pub struct Persist {
    /// The store writer.
    pub writer: Arc<Writer>,
    /// The table.
    pub table: String,
}

/// The row key of a dialog.
pub fn key(call_id: &str, caller_tag: &str) -> String {
    format!("{call_id};{caller_tag}")
}

fn leg_json(l: &Leg) -> Value {
    json!({
        "tag": l.tag,
        "contact": l.contact,
        "cseq": l.cseq,
        "route_set": l.route_set,
        "addr": l.addr.map(|a| a.to_string()),
        "local": l.local.map(|a| a.to_string()),
        "proto": l.proto.as_str(),
    })
}

fn leg_from(v: &Value) -> Leg {
    let addr = |k: &str| v[k].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
    Leg {
        tag: v["tag"].as_str().unwrap_or_default().to_string(),
        contact: v["contact"].as_str().unwrap_or_default().to_string(),
        cseq: v["cseq"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        route_set: v["route_set"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        addr: addr("addr"),
        local: addr("local"),
        proto: v["proto"]
            .as_str()
            .and_then(Proto::parse)
            .unwrap_or(Proto::Udp),
    }
}

/// The row of a dialog (`deadline_unix`: when it times out).
pub fn row(call_id: &str, i: &DlgInner, deadline_unix: i64) -> HtableRow {
    let v = json!({
        "call_id": call_id,
        "state": i.state as i64,
        "caller": leg_json(&i.caller),
        "callee": leg_json(&i.callee),
        "from": i.from,
        "to": i.to,
        "from_uri": i.from_uri,
        "to_uri": i.to_uri,
        "init_ts": i.init_ts,
        "start_ts": i.start_ts,
        "lifetime": i.lifetime,
        "profiles": i.profiles.iter().map(|(p, v)| json!([&**p, v])).collect::<Vec<_>>(),
        "vars": i.vars.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "dflags": i.dflags,
    });
    HtableRow {
        key_name: key(call_id, &i.caller.tag),
        value: HtableValue::Str(v.to_string()),
        expires: deadline_unix,
    }
}

/// A dialog read back from its row: its Call-ID and state, `None` for a row that is not one.
pub fn from_row(r: &HtableRow) -> Option<(String, DlgInner)> {
    let HtableValue::Str(text) = &r.value else {
        return None;
    };
    let v: Value = serde_json::from_str(text).ok()?;
    let state = match v["state"].as_i64()? {
        3 => DlgState::ConfirmedNa,
        4 => DlgState::Confirmed,
        _ => return None,
    };
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let pairs = |k: &str| -> Vec<(String, String)> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let inner = DlgInner {
        state,
        caller: leg_from(&v["caller"]),
        callee: leg_from(&v["callee"]),
        from: s("from"),
        to: s("to"),
        from_uri: s("from_uri"),
        to_uri: s("to_uri"),
        init_ts: v["init_ts"].as_i64().unwrap_or(0),
        start_ts: v["start_ts"].as_i64().unwrap_or(0),
        end_ts: 0,
        lifetime: v["lifetime"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(43_200),
        profiles: pairs("profiles")
            .into_iter()
            .map(|(p, v)| (Arc::from(p.as_str()), v))
            .collect(),
        vars: pairs("vars"),
        dflags: v["dflags"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        inserted: false,
    };
    Some((v["call_id"].as_str()?.to_string(), inner))
}
