//! The client side of the control socket, used by `sipd rpc`: one request per connection.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// How long the client waits for an answer (a reload compiles a script first).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No sipd listens there (or we may not talk to it).
    #[error("cannot connect to {path}: {source} (is sipd running as this user? an instance started with --name needs `sipd rpc --name NAME`)")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("rpc exchange failed: {0}")]
    Io(#[from] std::io::Error),
    /// The answer was not a JSON-RPC response.
    #[error("unexpected answer from sipd: {0}")]
    BadAnswer(String),
    /// sipd answered with an error object.
    #[error("{message} ({code})")]
    Rpc {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
        /// Its data.
        data: Option<Value>,
    },
}

/// A request object.
pub fn request(method: &str, params: &[Value]) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
}

/// Turn a command-line parameter into a JSON value: `s:text` is always a string; otherwise a
/// number, `true`/`false`/`null`, an array or an object when it parses as one; else a string.
pub fn parse_param(p: &str) -> Value {
    if let Some(s) = p.strip_prefix("s:") {
        return Value::String(s.to_string());
    }
    match serde_json::from_str::<Value>(p) {
        Ok(
            v @ (Value::Number(_)
            | Value::Bool(_)
            | Value::Null
            | Value::Array(_)
            | Value::Object(_)),
        ) => v,
        _ => Value::String(p.to_string()),
    }
}

/// The result of the response text `answer`, or its error.
pub fn result_of(answer: &[u8]) -> Result<Value, ClientError> {
    let v: Value = serde_json::from_slice(answer)
        .map_err(|e| ClientError::BadAnswer(format!("{e}: {}", String::from_utf8_lossy(answer))))?;
    if let Some(e) = v.get("error") {
        return Err(ClientError::Rpc {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            data: e.get("data").cloned(),
        });
    }
    v.get("result")
        .cloned()
        .ok_or_else(|| ClientError::BadAnswer(v.to_string()))
}

/// Call `method` on the sipd listening at `socket`.
pub fn call(socket: &Path, method: &str, params: &[Value]) -> Result<Value, ClientError> {
    let mut s = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(request(method, params).to_string().as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut answer = Vec::new();
    s.take(16 << 20).read_to_end(&mut answer)?;
    result_of(&answer)
}

/// Call `method` over HTTP at `addr` (`[rpc] http`).
pub fn call_http(addr: SocketAddr, method: &str, params: &[Value]) -> Result<Value, ClientError> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    let body = request(method, params).to_string();
    write!(
        s,
        "POST /RPC HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    s.take(16 << 20).read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::BadAnswer(String::from_utf8_lossy(&answer).into_owned()))?;
    result_of(answer.get(split + 4..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_from_the_command_line() {
        assert_eq!(parse_param("0"), json!(0));
        assert_eq!(parse_param("all"), json!("all"));
        assert_eq!(parse_param("core:"), json!("core:"));
        assert_eq!(parse_param("s:42"), json!("42"));
        assert_eq!(parse_param("\"q\""), json!("\"q\""));
        assert_eq!(parse_param("[1,2]"), json!([1, 2]));
    }

    #[test]
    fn answers() {
        assert_eq!(
            result_of(br#"{"jsonrpc":"2.0","result":5,"id":1}"#).ok(),
            Some(json!(5))
        );
        assert!(matches!(
            result_of(br#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"m"},"id":1}"#),
            Err(ClientError::Rpc { code: -32601, .. })
        ));
        assert!(matches!(result_of(b"nope"), Err(ClientError::BadAnswer(_))));
    }
}
