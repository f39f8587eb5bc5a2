//! The message lent to the `KSR` functions of the calling thread, and the faked message used
//! while a script loads.
//!
//! CPython has one interpreter per process, shared by every Python engine, and it may switch
//! threads between any two bytecodes. So the current message is kept per OS thread: a `KSR`
//! call always runs on the thread whose engine lent the message, and sees exactly that one.
//!
//! # Soundness
//!
//! [`lend`] stores a raw pointer to the caller's `&mut SipMsg` in a thread-local and returns a
//! [`MsgLease`] that keeps the unique borrow alive and restores the previous pointer when dropped
//! (also during unwinding). The lease is `!Send`, so it is dropped on the thread that made it.
//! [`with_msg`] turns the pointer into a `&mut SipMsg` only for the duration of one closure; a
//! `busy` flag refuses nested access (a Python finalizer run by an allocation inside the closure
//! that calls back into `KSR` gets `None`).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

use bytes::Bytes;

use crate::msg::{RecvInfo, RouteEnv};
use crate::sip::{Message, ParseError};
use crate::SipMsg;

thread_local! {
    static CURRENT: Cell<*mut SipMsg> = const { Cell::new(ptr::null_mut()) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// The message `KSR` calls see while a script loads, as Kamailio's `faked_msg`: an OPTIONS
/// request that nobody sends.
const FAKED: &[u8] = b"OPTIONS sip:you@sipd.invalid SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfaked\r\n\
From: <sip:you@sipd.invalid>;tag=faked\r\n\
To: <sip:you@sipd.invalid>\r\n\
Call-ID: faked-message\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

/// A fresh faked message for one load or reload. Its effects are thrown away.
pub(super) fn faked_msg() -> Result<SipMsg, ParseError> {
    let message = Message::parse(Bytes::from_static(FAKED))?;
    Ok(SipMsg::new(
        message,
        RecvInfo::default(),
        Arc::new(RouteEnv::default()),
    ))
}

/// Lend `msg` to the `KSR` functions called on this thread until the lease is dropped.
pub(super) fn lend(msg: &mut SipMsg) -> MsgLease<'_> {
    let prev = CURRENT.with(|c| c.replace(msg as *mut SipMsg));
    MsgLease {
        prev,
        _msg: PhantomData,
        _not_send: PhantomData,
    }
}

/// Run `f` on the message lent on this thread, if any and if not already in use.
#[inline]
pub(super) fn with_msg<R>(f: impl FnOnce(&mut SipMsg) -> R) -> Option<R> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() || BUSY.with(|b| b.replace(true)) {
        return None;
    }
    let _busy = BusyGuard;
    // SAFETY: `p` is non-null only while a `MsgLease` made on this thread holds the unique
    // borrow it came from (module docs), and `BUSY` makes this the only `&mut` made from it now.
    let msg = unsafe { &mut *p };
    Some(f(msg))
}

/// Clears the busy flag, also when unwinding.
struct BusyGuard;

impl Drop for BusyGuard {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(false));
    }
}

/// A message lent to the `KSR` functions of this thread; dropping it takes the message back.
pub(super) struct MsgLease<'a> {
    prev: *mut SipMsg,
    _msg: PhantomData<&'a mut SipMsg>,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for MsgLease<'_> {
    fn drop(&mut self) {
        let prev = self.prev;
        CURRENT.with(|c| c.set(prev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_only_inside_the_lease() {
        let mut msg = faked_msg().expect("faked message parses");
        assert!(with_msg(|_| ()).is_none());
        {
            let _lease = lend(&mut msg);
            assert_eq!(
                with_msg(|m| m.message.method_str().map(str::to_owned)),
                Some(Some("OPTIONS".to_owned()))
            );
            // Nested access is refused.
            assert_eq!(with_msg(|_| with_msg(|_| ())), Some(None));
        }
        assert!(with_msg(|_| ()).is_none());
    }
}
