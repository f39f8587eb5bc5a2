//! A minimal HTTP/1.1 exchange over one connection, enough for `POST` of a JSON-RPC request and
//! `GET /metrics`: bounded header and body sizes, a deadline, `Connection: close`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// Time one exchange may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
}

/// A response to send.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Error",
    }
}

/// Read one request from `s`, answer it with `handle`, close. Errors are logged at debug level.
pub async fn serve(mut s: TcpStream, handle: impl FnOnce(Request) -> Response) {
    let exchange = async {
        let resp = match read_request(&mut s).await {
            Ok(req) => handle(req),
            Err(resp) => resp,
        };
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            resp.status,
            reason(resp.status),
            resp.content_type,
            resp.body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(&resp.body).await?;
        s.shutdown().await
    };
    match tokio::time::timeout(DEADLINE, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("http exchange failed: {e}"),
        Err(_) => tracing::debug!("http exchange timed out"),
    }
}

async fn read_request(s: &mut TcpStream) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return Err(Response::text(400, "request head too large\n"));
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Response::text(400, "incomplete request\n")),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or("").split(' ');
    let (method, path) = match (start.next(), start.next()) {
        (Some(m), Some(p)) if !m.is_empty() => (m.to_string(), p.to_string()),
        _ => return Err(Response::text(400, "bad request line\n")),
    };
    let mut length = 0usize;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v
                    .trim()
                    .parse()
                    .map_err(|_| Response::text(400, "bad Content-Length\n"))?;
            }
        }
    }
    if length > MAX_BODY {
        return Err(Response::text(413, "body too large\n"));
    }
    let mut body = buf.get(head_end + 4..).unwrap_or_default().to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Response::text(400, "incomplete body\n")),
            Ok(n) => body.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    body.truncate(length);
    Ok(Request { method, path, body })
}
