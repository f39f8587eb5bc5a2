use kemi_runtime::{kemi, SipMsg};

#[kemi(module = "tm", name = "end")]
fn finish(_msg: &mut SipMsg) {}

#[kemi(module = "class")]
fn klass(_msg: &mut SipMsg) {}

// The default name is the function's, so the error says how to rename it.
#[kemi(module = "x")]
fn function(_msg: &mut SipMsg) {}

#[kemi]
fn r#return(_msg: &mut SipMsg) {}

fn main() {}
