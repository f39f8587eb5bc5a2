//! The control socket file: bound with mode 0600 before anyone can reach it, a stale file from
//! a dead sipd replaced, a live one or a non-socket refused.
//!
//! The socket is bound under a temporary name, restricted to its owner, and only then renamed
//! into place, so no other user ever sees it open. Peers are checked again per connection
//! ([`peer_allowed`]): only the socket owner's uid may talk to it.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another process answers on the path.
    #[error("{0}: another sipd is listening there")]
    InUse(PathBuf),
    /// The path exists and is not a socket.
    #[error("{0}: exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A listening socket at `path`, mode 0600, and the uid allowed to use it.
pub fn bind_private(path: &Path) -> Result<(UnixListener, u32), SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(SocketError::NotASocket(path.to_path_buf()))
        }
        Ok(_) => {
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io(&tmp))?;
    let done = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    let uid = std::fs::metadata(path).map_err(io(path))?.uid();
    listener.set_nonblocking(true).map_err(io(path))?;
    Ok((listener, uid))
}

/// True when the peer of `stream` runs as `owner` or as root.
pub fn peer_allowed(stream: &tokio::net::UnixStream, owner: u32) -> bool {
    // root may too: it can read the process's memory anyway, and `sudo sipd rpc` is how an
    // operator reaches a sipd that runs as its own user (examples/systemd/sipd.service).
    stream
        .peer_cred()
        .is_ok_and(|c| c.uid() == owner || c.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_stale_and_refusals() {
        let dir = tempdir();
        let path = dir.join("ctl.sock");
        let (l, uid) = bind_private(&path).expect("bind");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(uid, std::fs::metadata(&dir).expect("meta").uid());
        assert!(matches!(bind_private(&path), Err(SocketError::InUse(_))));
        drop(l);
        assert!(bind_private(&path).is_ok(), "a stale socket is replaced");
        let file = dir.join("plain");
        std::fs::write(&file, "x").expect("write");
        assert!(matches!(
            bind_private(&file),
            Err(SocketError::NotASocket(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("sipd-sock-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }
}
