//! dispatcher RPC methods with Kamailio's names and result shapes: `dispatcher.list [mode]`
//! (sets, destinations, their two-letter states `AP`/`IP`/`TP`/`DX`...; mode `short` or
//! `full`), `dispatcher.reload` (re-reads the list file or table; unchanged destinations keep
//! their state) and `dispatcher.set_state` (`state group address`, `address` may be `all`).

use kemi_runtime::services::Services;
use modules::dispatcher::list::{DISABLED, INACTIVE, PROBING, TRYING};
use modules::dispatcher::DispatcherState;
use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// The dispatcher methods (answered when dispatcher is set up).
pub const METHODS: [&str; 3] = [
    "dispatcher.list",
    "dispatcher.reload",
    "dispatcher.set_state",
];

fn fault(message: impl Into<String>) -> RpcError {
    RpcError::new(500, message)
}

/// Run dispatcher method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    let Some(st) = services.get::<DispatcherState>() else {
        return Some(Err(fault(
            "dispatcher is not set up (enable the dispatcher module)",
        )));
    };
    Some(match method {
        "dispatcher.list" => list_mode(params).map(|mode| list(st, mode)),
        "dispatcher.reload" => no_params(method, params).and_then(|()| {
            st.reload()
                .map(|_| json!("Ok. Dispatcher successfully reloaded."))
                .map_err(|e| fault(format!("Reload Failed ({e})")))
        }),
        _ => set_state(st, params),
    })
}

/// How much `dispatcher.list` shows (Kamailio's optional mode parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListMode {
    /// URI, flags, priority, attributes.
    Normal,
    /// Without the attributes.
    Short,
    /// Plus host, address, port and transport.
    Full,
}

fn list_mode(params: &[Value]) -> Result<ListMode, RpcError> {
    match params {
        [] => Ok(ListMode::Normal),
        [Value::String(m)] => match m.as_str() {
            "normal" => Ok(ListMode::Normal),
            "short" => Ok(ListMode::Short),
            "full" => Ok(ListMode::Full),
            _ => Err(RpcError::params(format!(
                "dispatcher.list mode `{m}`: normal, short or full"
            ))),
        },
        _ => Err(RpcError::params(
            "dispatcher.list takes an optional mode: normal, short or full",
        )),
    }
}

fn no_params(method: &str, params: &[Value]) -> Result<(), RpcError> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(RpcError::params(format!("{method} takes no parameters")))
    }
}

/// Kamailio's `dispatcher.list` structure.
pub fn list(st: &DispatcherState, mode: ListMode) -> Value {
    let lists = st.current();
    let records: Vec<Value> = lists
        .sets
        .values()
        .map(|s| {
            let targets: Vec<Value> = s
                .dests
                .iter()
                .map(|d| {
                    let a = &d.entry.attrs;
                    let mut dest = json!({
                        "URI": d.entry.uri,
                        "FLAGS": d.state_letters(),
                        "PRIORITY": d.entry.priority,
                    });
                    if mode == ListMode::Full {
                        dest["HOST"] = json!(d.entry.host);
                        dest["IPADDR"] = json!(d.addr.map(|a| a.ip().to_string()));
                        dest["PORT"] = json!(d.entry.port);
                        dest["PROTOID"] = json!(d.entry.proto.number());
                    }
                    if mode != ListMode::Short {
                        dest["ATTRS"] = json!({
                            "BODY": a.body,
                            "DUID": a.duid,
                            "MAXLOAD": a.maxload,
                            "WEIGHT": a.weight,
                            "RWEIGHT": 0,
                            "SOCKET": "",
                            "SOCKNAME": "",
                            "OBPROXY": "",
                        });
                    }
                    json!({"DEST": dest})
                })
                .collect();
            json!({"SET": {"ID": s.id, "TARGETS": targets}})
        })
        .collect();
    json!({"NRSETS": lists.sets.len(), "RECORDS": records})
}

/// `dispatcher.set_state state group address`: `state` is `a`/`1` (active), `i`/`0`
/// (inactive), `t` (trying), `d` (disabled), optionally followed by `p` (probing).
fn set_state(st: &DispatcherState, params: &[Value]) -> Result<Value, RpcError> {
    let usage = "dispatcher.set_state takes state, group and address";
    let state = params
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::params(usage))?;
    let group = match params.get(1) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|g| i32::try_from(g).ok())
    .ok_or_else(|| RpcError::params(usage))?;
    let address = params
        .get(2)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::params(usage))?;
    let mut chars = state.chars().map(|c| c.to_ascii_lowercase());
    let mut bits = match chars.next() {
        Some('0' | 'i') => INACTIVE,
        Some('1' | 'a') => 0,
        Some('t') => TRYING,
        Some('d') => DISABLED,
        _ => return Err(fault("Bad state value")),
    };
    match chars.next() {
        Some('p') if bits != DISABLED => bits |= PROBING,
        None => {}
        Some(_) => return Err(fault("Bad state value")),
    }
    if st.set_state(group, address, bits) == 0 {
        return Err(fault("State update failed"));
    }
    Ok(Value::Null)
}
