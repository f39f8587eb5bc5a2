//! A TCP connection over a connection limit (`[tcp] max_connections_per_listener`,
//! `max_connections_per_ip`): its first request is answered `503 Service Unavailable` with
//! `Retry-After`, as a request over `[tm] max_transactions` is, and the connection closes.
//! A client so learns to come back later instead of seeing a bare reset.
//!
//! What such a connection may cost is bounded: [`MAX_ANSWERING`] per worker at once (beyond
//! that it is closed at once, as before), [`HEAD_MAX`] octets read and [`READ_WINDOW`] to send
//! them. It holds no connection permit and is never routed.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tm::RETRY_AFTER_S;

/// Refused connections answered at once by one worker; more are closed unanswered.
pub(super) const MAX_ANSWERING: usize = 32;
/// How long a refused connection has to send its first request's head.
const READ_WINDOW: Duration = Duration::from_secs(2);
/// The most octets read from a refused connection: a head larger than this gets no answer.
const HEAD_MAX: usize = 8 * 1024;

/// Read the first request's head from `stream` and answer it 503 with `Retry-After`; then
/// close. Nothing is sent when no head arrives in time or it cannot be answered (a response,
/// or a head without the headers a reply needs). True when the 503 was sent.
pub(super) async fn answer_503(mut stream: TcpStream) -> bool {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_WINDOW, async {
        let mut chunk = [0u8; 1024];
        while head.len() < HEAD_MAX && !has_head(&head) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        has_head(&head)
    })
    .await;
    if read != Ok(true) {
        return false;
    }
    let extra = format!("Retry-After: {RETRY_AFTER_S}\r\n");
    let mut wire = Vec::with_capacity(512);
    if !super::super::malformed::build_reply_with(
        &head,
        503,
        "Service Unavailable",
        &extra,
        &mut wire,
    ) {
        return false;
    }
    let sent = tokio::time::timeout(READ_WINDOW, async {
        stream.write_all(&wire).await?;
        stream.shutdown().await
    })
    .await;
    matches!(sent, Ok(Ok(())))
}

/// Whether `buf` holds a whole head (an empty line after at least a start line), past any
/// CRLF keepalives in front.
fn has_head(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(buf.len());
    let rest = buf.get(start..).unwrap_or_default();
    rest.windows(4).any(|w| w == b"\r\n\r\n") || rest.windows(2).any(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::has_head;

    #[test]
    fn a_head_ends_at_its_empty_line_not_at_leading_keepalives() {
        assert!(!has_head(b"\r\n\r\n"));
        assert!(!has_head(b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nVia: x\r\n"));
        assert!(has_head(b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n"));
        assert!(has_head(b"OPTIONS sip:a SIP/2.0\nVia: x\n\n"));
    }
}
