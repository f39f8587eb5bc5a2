//! The message lent to the `KSR` functions of the calling thread, and the faked message used
//! while a script loads.
//!
//! CPython has one interpreter per process, shared by every Python engine, and it may switch
//! threads between any two bytecodes. So the current message is kept per OS thread: a `KSR`
//! call always runs on the thread whose engine lent the message, and sees exactly that one.
//!
//! # Soundness
//!
//! The slot is a [`MsgSlot`] in a thread-local; [`crate::engine::lease`] argues why lending
//! through it is sound. A loan is a scope on this thread, so it ends on the thread that made it,
//! and a Python finalizer run by an allocation inside a [`with_msg`] closure that calls back into
//! `KSR` gets `None`.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::lease::{CallError, MsgSlot};
use crate::engine::EngineKind;
use crate::export::{KemiExport, KemiRet};
use crate::msg::{RecvInfo, RouteEnv};
use crate::sip::{Message, ParseError};
use crate::{Arg, SipMsg};

thread_local! {
    static CURRENT: MsgSlot = const { MsgSlot::new() };
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

/// Lend `msg` to the `KSR` functions called on this thread while `f` runs.
pub(super) fn lent<R>(msg: &mut SipMsg, f: impl FnOnce() -> R) -> R {
    CURRENT.with(|slot| slot.lent(msg, f))
}

/// Run `f` on the message lent on this thread, if any and if not already in use.
#[inline]
pub(super) fn with_msg<R>(f: impl FnOnce(&mut SipMsg) -> R) -> Option<R> {
    CURRENT.with(|slot| slot.with_msg(f))
}

/// Call `export` on the message lent on this thread, catching (and logging) panics.
#[inline]
pub(super) fn call(export: &'static KemiExport, args: &[Arg<'_>]) -> Result<KemiRet, CallError> {
    CURRENT.with(|slot| slot.call(EngineKind::Python, export, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lent_only_inside_the_lease() {
        let mut msg = faked_msg().expect("faked message parses");
        assert!(with_msg(|_| ()).is_none());
        lent(&mut msg, || {
            assert_eq!(
                with_msg(|m| m.message.method_str().map(str::to_owned)),
                Some(Some("OPTIONS".to_owned()))
            );
            // Nested access is refused.
            assert_eq!(with_msg(|_| with_msg(|_| ())), Some(None));
        });
        assert!(with_msg(|_| ()).is_none());
    }
}
