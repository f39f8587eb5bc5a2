//! `corex.append_branch*`: extra branches of the transaction. The first branch is the R-URI
//! in effect; each appended one is relayed in parallel by `t_relay` (RFC 3261 16.6).

use kemi_runtime::msg::{BranchTarget, LogLevel};
use kemi_runtime::sip::Uri;
use kemi_runtime::{kemi, SipMsg};

fn push(msg: &mut SipMsg, uri: Option<&str>) -> i32 {
    let copy_du = uri.is_none();
    if !msg.message.is_request() {
        return -1;
    }
    let uri = match uri {
        Some(u) => u.to_string(),
        None => match msg.ruri() {
            Some(r) => r.to_string(),
            None => return -1,
        },
    };
    if Uri::parse(&uri).is_err() {
        msg.log(LogLevel::Err, &format!("append_branch: bad URI [{uri}]"));
        return -1;
    }
    let dst = if copy_du {
        msg.route.dst_uri.clone().filter(|d| !d.is_empty())
    } else {
        None
    };
    msg.tm.branches.push(BranchTarget { uri, dst });
    1
}

/// Add a branch with the R-URI and `$du` in effect. Returns 1, or -1 for a reply.
#[kemi(module = "corex")]
pub fn append_branch(msg: &mut SipMsg) -> i32 {
    push(msg, None)
}

/// Add a branch to `uri` (sent to `uri` itself). Returns 1, or -1
/// for a reply or a URI that does not parse.
#[kemi(module = "corex")]
pub fn append_branch_uri(msg: &mut SipMsg, uri: &str) -> i32 {
    push(msg, Some(uri))
}

/// `append_branch_uri` with a q-value; sipd forks all branches in parallel, so `q` is accepted
/// and ignored.
#[kemi(module = "corex")]
pub fn append_branch_uri_q(msg: &mut SipMsg, uri: &str, q: &str) -> i32 {
    let _ = q;
    push(msg, Some(uri))
}
