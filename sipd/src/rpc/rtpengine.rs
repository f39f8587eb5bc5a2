//! rtpengine RPC methods with Kamailio's names: `rtpengine.show <url|all>`,
//! `rtpengine.enable <url|all> <0|1>`, `rtpengine.ping <url|all>`. Each answers the matching
//! nodes as `{url, set, index, weight, disabled, recheck_ticks}` (one object for one node, an
//! array for several); a URL that names no node is a 500 fault.

use modules::rtpengine::relay::Relay;
use modules::rtpengine::NgRelay;
use serde_json::{json, Value};

use kemi_runtime::services::Services;

use super::jsonrpc::RpcError;

/// The rtpengine methods (answered when rtpengine is configured).
pub const METHODS: [&str; 3] = ["rtpengine.enable", "rtpengine.ping", "rtpengine.show"];

fn node_json(r: &Relay, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for set in &r.sets {
        for (i, n) in set.nodes.iter().enumerate() {
            if url == "all" || n.url == url {
                out.push(json!({
                    "url": n.url,
                    "set": set.id,
                    "index": i,
                    "weight": n.weight,
                    "disabled": i32::from(!r.enabled(n)),
                    "recheck_ticks": 0,
                }));
            }
        }
    }
    out
}

fn shape(mut v: Vec<Value>) -> Value {
    if v.len() == 1 {
        v.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(v)
    }
}

/// Run rtpengine method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    let Some(relay) = services.get::<NgRelay>() else {
        return Some(Err(RpcError::new(
            500,
            "rtpengine is not configured (modparam rtpengine_sock)",
        )));
    };
    let r = &relay.0;
    let Some(url) = params.first().and_then(Value::as_str) else {
        return Some(Err(RpcError::params(format!(
            "{method} takes a node URL or `all`"
        ))));
    };
    if r.find(url).next().is_none() {
        return Some(Err(RpcError::new(
            500,
            format!("Instance not found: {url}"),
        )));
    }
    match method {
        "rtpengine.enable" => {
            let on = match params.get(1) {
                Some(Value::Number(n)) => n.as_i64().map(|n| n != 0),
                Some(Value::String(s)) => s.trim().parse::<i64>().ok().map(|n| n != 0),
                _ => None,
            };
            let Some(on) = on else {
                return Some(Err(RpcError::params(
                    "rtpengine.enable takes a node URL or `all` and 0 or 1",
                )));
            };
            for n in r.find(url) {
                r.set_enabled(n, on);
            }
        }
        "rtpengine.ping" => {
            for n in r.find(url) {
                modules::rtpengine::ping(r, n);
            }
        }
        _ => {}
    }
    Some(Ok(shape(node_json(r, url))))
}
