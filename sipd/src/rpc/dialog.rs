//! dialog RPC methods with Kamailio's names and result shapes: `dlg.list` (every dialog with
//! its state, legs, profiles and variables), `dlg.end_dlg h_entry h_id` (BYE to both sides,
//! the dialog ends), `dlg.profile_get_size profile [value]`, `dlg.stats_active` (dialogs per
//! state).

use kemi_runtime::services::Services;
use modules::dialog::state::{DlgCell, Leg};
use modules::dialog::{DialogState, Side};
use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// The dialog methods (answered when dialog is set up).
pub const METHODS: [&str; 4] = [
    "dlg.list",
    "dlg.end_dlg",
    "dlg.profile_get_size",
    "dlg.stats_active",
];

fn fault(message: impl Into<String>) -> RpcError {
    RpcError::new(500, message)
}

/// Run dialog method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    let Some(st) = services.get_arc::<DialogState>() else {
        return Some(Err(fault(
            "dialog is not set up (enable the dialog module)",
        )));
    };
    Some(match method {
        "dlg.list" => Ok(Value::Array(st.all().iter().map(|c| dialog(c)).collect())),
        "dlg.end_dlg" => end_dlg(&st, params),
        "dlg.profile_get_size" => profile_size(&st, params),
        _ => Ok(stats_active(&st)),
    })
}

fn leg(l: &Leg) -> Value {
    json!({
        "tag": l.tag,
        "contact": l.contact,
        "cseq": l.cseq.to_string(),
        "route_set": l.route_set.join(","),
        "socket": l.local.map(|a| format!("{}:{a}", l.proto.as_str())).unwrap_or_default(),
    })
}

/// One dialog as Kamailio's `dlg.list` prints it.
pub fn dialog(c: &DlgCell) -> Value {
    let i = c.lock();
    let now = modules::store::now_unix();
    let duration = match (i.start_ts, i.end_ts) {
        (0, _) => 0,
        (s, 0) => now - s,
        (s, e) => e - s,
    };
    let profiles: Vec<Value> = i
        .profiles
        .iter()
        .map(|(n, v)| {
            if v.is_empty() {
                json!(n.to_string())
            } else {
                json!({ n.to_string(): v })
            }
        })
        .collect();
    let vars: Vec<Value> = i.vars.iter().map(|(k, v)| json!({ k: v })).collect();
    json!({
        "h_entry": c.h_entry,
        "h_id": c.h_id,
        "ref": 1,
        "call-id": &*c.call_id,
        "from_uri": i.from_uri,
        "to_uri": i.to_uri,
        "state": i.state as i64,
        "start_ts": i.start_ts,
        "init_ts": i.init_ts,
        "end_ts": i.end_ts,
        "duration": duration,
        "timeout": if i.state.is_confirmed() { i.start_ts + i64::from(i.lifetime) } else { 0 },
        "lifetime": i.lifetime,
        "dflags": i.dflags,
        "sflags": 0,
        "iflags": 0,
        "caller": leg(&i.caller),
        "callee": leg(&i.callee),
        "profiles": profiles,
        "variables": vars,
    })
}

fn int_param(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn end_dlg(st: &std::sync::Arc<DialogState>, params: &[Value]) -> Result<Value, RpcError> {
    let (Some(he), Some(hi)) = (int_param(params.first()), int_param(params.get(1))) else {
        return Err(RpcError::params("dlg.end_dlg takes h_entry and h_id"));
    };
    let Some(cell) = st.by_id(he, hi) else {
        return Err(RpcError::new(404, "Requested Dialog not found"));
    };
    if !st.bye(&cell, vec![Side::Caller, Side::Callee]) {
        // Not confirmed (or no UDP socket to send from): ended without BYEs.
        st.end(&cell, false);
    }
    Ok(Value::Null)
}

fn profile_size(st: &DialogState, params: &[Value]) -> Result<Value, RpcError> {
    let Some(name) = params.first().and_then(Value::as_str) else {
        return Err(RpcError::params(
            "dlg.profile_get_size takes a profile and an optional value",
        ));
    };
    let Some(p) = st.profile(name) else {
        return Err(RpcError::new(404, "Non existing profile"));
    };
    let value = params.get(1).and_then(Value::as_str);
    Ok(json!({
        "profile": name,
        "value": value.unwrap_or(""),
        "count": p.size(value),
    }))
}

fn stats_active(st: &DialogState) -> Value {
    let mut counts = [0i64; 5];
    for c in st.all() {
        let s = c.lock().state as usize;
        if let Some(n) = s.checked_sub(1).and_then(|i| counts.get_mut(i)) {
            *n += 1;
        }
    }
    let [starting, connecting, answering, ongoing, _] = counts;
    json!({
        "starting": starting,
        "connecting": connecting,
        "answering": answering,
        "ongoing": ongoing,
        "all": starting + connecting + answering + ongoing,
    })
}
