//! [`Ctx`]: what the `KSR` C functions of one interpreter share (the engine-neutral
//! [`crate::engine::ctx::Ctx`], made with [`EngineKind::Lua`](crate::engine::EngineKind::Lua)).
//!
//! The lent message is sound as [`crate::engine::lease`] argues. Here in particular: exports
//! have no handle to the interpreter, so they cannot re-enter it, and no Lua API call happens
//! while the `&mut SipMsg` of an export call is alive, so Lua finalizers cannot observe it
//! either (the `busy` flag would refuse them anyway).

pub(super) use crate::engine::ctx::Ctx;
pub(super) use crate::engine::lease::CallError;
