//! The `corex` sub-module (`KSR.corex.*`): `has_ruri_user`, `has_user_agent`, and the
//! `file_read`/`file_write` helpers. The branch functions (`append_branch*`) live with the
//! transaction layer's exports in `tm::branch`.
//!
//! Left out, because they need what sipd does not have yet: the extended flags word (`setxflag`, `resetxflag`, `isxflagset`), named and chosen sockets
//! (`set_send_socket*`, `set_recv_socket*`, `set_source_address`, `is_socket_name`), Via
//! building (`via_add_srvid`, `via_add_xavp_params`, `via_use_xavp_fields`,
//! `via_reply_add_xavp_params`), sending (`send_data`, `sendx`, `forward_uac*`) and faked
//! messages for event routes (`is_faked_msg`).

use std::io::Read;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::Uri;
use kemi_runtime::{kemi, SipMsg, Xval};

use crate::view;

/// Largest file `file_read` returns, so a script mistake cannot exhaust memory.
pub const FILE_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// 1 when the Request-URI in effect (`$ru`) has a non-empty user part, else -1 (also for
/// replies and an R-URI that does not parse).
#[kemi(module = "corex")]
pub fn has_ruri_user(msg: &mut SipMsg) -> i32 {
    let has = view::current_ruri(msg)
        .and_then(|r| Uri::parse(r).ok())
        .and_then(|u| u.user)
        .is_some_and(|u| !u.is_empty());
    if has {
        1
    } else {
        -1
    }
}

/// 1 when the message has a User-Agent header with a non-empty value, else -1.
#[kemi(module = "corex")]
pub fn has_user_agent(msg: &mut SipMsg) -> i32 {
    if msg
        .message
        .user_agent()
        .is_some_and(|ua| !ua.trim().is_empty())
    {
        1
    } else {
        -1
    }
}

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
enum FileError {
    /// The OS refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is larger than [`FILE_READ_LIMIT`].
    #[error("file larger than {FILE_READ_LIMIT} bytes")]
    TooLarge,
    /// The content is not UTF-8 (scripts get strings).
    #[error("file is not UTF-8")]
    NotUtf8,
}

fn read_text(fname: &str) -> Result<String, FileError> {
    let file = std::fs::File::open(fname)?;
    let mut bytes = Vec::new();
    file.take(FILE_READ_LIMIT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > FILE_READ_LIMIT {
        return Err(FileError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)
}

/// The whole content of file `fname` as a string, or null (logged) when it cannot be read, is
/// not UTF-8 or is larger than 16 MiB. The read blocks the worker: use it at startup or for
/// small local files.
#[kemi(module = "corex")]
pub fn file_read(msg: &mut SipMsg, fname: &str) -> Xval {
    match read_text(fname) {
        Ok(text) => Xval::Str(text),
        Err(e) => {
            msg.log(LogLevel::Err, &format!("cannot read file [{fname}]: {e}"));
            Xval::Null
        }
    }
}

/// Write `content` to file `fname`, replacing what it held (the file is created if needed).
/// Returns 1, or -1 (logged) when it cannot be written. The write blocks the worker.
#[kemi(module = "corex")]
pub fn file_write(msg: &mut SipMsg, fname: &str, content: &str) -> i32 {
    match std::fs::write(fname, content).map_err(FileError::from) {
        Ok(()) => 1,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("cannot write file [{fname}]: {e}"));
            -1
        }
    }
}
