//! JSON-RPC 2.0 framing: one request (or a batch) in, the response text out. Malformed input
//! gets the standard error objects, never a panic.

use serde_json::{json, Value};

/// Parse error (-32700).
pub const PARSE_ERROR: i64 = -32700;
/// Invalid request (-32600).
pub const INVALID_REQUEST: i64 = -32600;
/// Method not found (-32601).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid params (-32602).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error (-32603).
pub const INTERNAL_ERROR: i64 = -32603;
/// Kamailio's fault code of a failed `app_*.reload` ("Reload Failed").
pub const RELOAD_FAILED: i64 = 500;

/// What answers one call: the method name and its positional params.
pub type Dispatch<'a> = dyn Fn(&str, &[Value]) -> Result<Value, RpcError> + 'a;

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// A short message.
    pub message: String,
    /// Details, when there are any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Invalid params, saying which.
    pub fn params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }

    fn to_json(&self) -> Value {
        match &self.data {
            Some(d) => json!({"code": self.code, "message": self.message, "data": d}),
            None => json!({"code": self.code, "message": self.message}),
        }
    }
}

/// Answer the request text `body` with `call(method, params)`; `None` for notifications only.
pub fn handle(body: &[u8], call: &Dispatch<'_>) -> Option<String> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(response(
                Value::Null,
                Err(RpcError::new(PARSE_ERROR, format!("parse error: {e}"))),
            ))
        }
    };
    match parsed {
        Value::Array(batch) if batch.is_empty() => Some(response(
            Value::Null,
            Err(RpcError::new(INVALID_REQUEST, "empty batch")),
        )),
        Value::Array(batch) => {
            let answers: Vec<String> = batch.iter().filter_map(|r| one(r, call)).collect();
            (!answers.is_empty()).then(|| format!("[{}]", answers.join(",")))
        }
        single => one(&single, call),
    }
}

fn one(req: &Value, call: &Dispatch<'_>) -> Option<String> {
    let id = req.get("id").cloned();
    let invalid = |why: &str| {
        Some(response(
            id.clone().unwrap_or(Value::Null),
            Err(RpcError::new(
                INVALID_REQUEST,
                format!("invalid request: {why}"),
            )),
        ))
    };
    if !req.is_object() {
        return invalid("not an object");
    }
    if req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("\"jsonrpc\" must be \"2.0\"");
    }
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return invalid("no \"method\" string");
    };
    let params: Vec<Value> = match req.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(_)) => {
            return Some(response(
                id.unwrap_or(Value::Null),
                Err(RpcError::params(
                    "named params are not supported; pass an array",
                )),
            ))
        }
        Some(_) => return invalid("\"params\" must be an array"),
    };
    let result = call(method, &params);
    id.map(|id| response(id, result))
}

/// The response object text.
pub fn response(id: Value, result: Result<Value, RpcError>) -> String {
    let v = match result {
        Ok(r) => json!({"jsonrpc": "2.0", "result": r, "id": id}),
        Err(e) => json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id}),
    };
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(m: &str, p: &[Value]) -> Result<Value, RpcError> {
        match m {
            "echo" => Ok(Value::Array(p.to_vec())),
            _ => Err(RpcError::new(METHOD_NOT_FOUND, "method not found")),
        }
    }

    fn ask(body: &str) -> Value {
        serde_json::from_str(&handle(body.as_bytes(), &echo).expect("answer")).expect("json")
    }

    #[test]
    fn errors_are_objects() {
        assert_eq!(ask("{oops")["error"]["code"], PARSE_ERROR);
        assert_eq!(ask("[]")["error"]["code"], INVALID_REQUEST);
        assert_eq!(ask("42")["error"]["code"], INVALID_REQUEST);
        assert_eq!(
            ask(r#"{"jsonrpc":"1.0","method":"echo","id":1}"#)["error"]["code"],
            INVALID_REQUEST
        );
        assert_eq!(
            ask(r#"{"jsonrpc":"2.0","method":"nope","id":1}"#)["error"]["code"],
            METHOD_NOT_FOUND
        );
        assert_eq!(
            ask(r#"{"jsonrpc":"2.0","method":"echo","params":7,"id":1}"#)["error"]["code"],
            INVALID_REQUEST
        );
        let ok = ask(r#"{"jsonrpc":"2.0","method":"echo","params":[1,"a"],"id":"x"}"#);
        assert_eq!(
            (ok["result"].clone(), ok["id"].clone()),
            (json!([1, "a"]), json!("x"))
        );
    }

    #[test]
    fn notifications_and_batches() {
        assert!(handle(br#"{"jsonrpc":"2.0","method":"echo"}"#, &echo).is_none());
        let b = ask(
            r#"[{"jsonrpc":"2.0","method":"echo","id":1},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"x","id":2}]"#,
        );
        assert_eq!(b.as_array().map(Vec::len), Some(2));
    }
}
