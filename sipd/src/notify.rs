//! systemd's readiness protocol (`sd_notify`, `Type=notify` units): when `NOTIFY_SOCKET` names a
//! datagram socket, tell it `READY=1` once sipd listens and runs its script, `RELOADING=1` /
//! `READY=1` around a reload, and `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` nothing is
//! sent. A failure to notify is logged, never fatal.

use std::os::unix::net::UnixDatagram;

/// The socket systemd named, if any: a path, or an abstract name written `@name`.
fn socket() -> Option<std::ffi::OsString> {
    std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty())
}

/// Send `state` (newline-separated `KEY=VALUE` lines) to the service manager, when there is one.
pub fn notify(state: &str) {
    let Some(target) = socket() else {
        return;
    };
    if let Err(e) = send(&target, state) {
        tracing::warn!(
            "cannot notify the service manager at {}: {e}",
            target.to_string_lossy()
        );
    }
}

fn send(target: &std::ffi::OsStr, state: &str) -> std::io::Result<usize> {
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)
        }
        None => sock.send_to(state.as_bytes(), target),
    }
}

/// The server listens and its workers run the script.
pub fn ready() {
    notify(&format!("READY=1\nMAINPID={}", std::process::id()));
}

/// The server is stopping.
pub fn stopping() {
    notify("STOPPING=1");
}
