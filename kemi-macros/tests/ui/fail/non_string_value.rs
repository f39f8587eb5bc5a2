use kemi_runtime::{kemi, SipMsg};

#[kemi(module = 5)]
fn number(_msg: &mut SipMsg) {}

#[kemi(name = setflag)]
fn ident(_msg: &mut SipMsg) {}

#[kemi(name)]
fn bare(_msg: &mut SipMsg) {}

#[kemi(module("pv"))]
fn call_like(_msg: &mut SipMsg) {}

#[kemi("pv")]
fn positional(_msg: &mut SipMsg) {}

fn main() {}
