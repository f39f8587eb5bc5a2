//! `siptrace.status on|off|check` with Kamailio's name and answers ("Enabled"/"Disabled"):
//! switch the HEP copies of the `siptrace` module live.

use kemi_runtime::services::Services;
use modules::siptrace::Tracer;
use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// The siptrace methods (answered when siptrace is set up).
pub const METHODS: [&str; 1] = ["siptrace.status"];

/// Run siptrace method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    let Some(tracer) = services.get::<Tracer>() else {
        return Some(Err(RpcError::new(
            500,
            "siptrace is not set up (set [modparam.siptrace] duplicate_uri)",
        )));
    };
    let state = |on: bool| json!(if on { "Enabled" } else { "Disabled" });
    Some(match params {
        [Value::String(s)] if s == "on" => {
            tracer.set_on(true);
            Ok(state(true))
        }
        [Value::String(s)] if s == "off" => {
            tracer.set_on(false);
            Ok(state(false))
        }
        [Value::String(s)] if s == "check" => Ok(state(tracer.is_on())),
        _ => Err(RpcError::params(
            "siptrace.status takes one parameter: on, off or check",
        )),
    })
}
