use kemi_runtime::{kemi, SipMsg};

#[kemi(name = "1st")]
fn first(_msg: &mut SipMsg) {}

#[kemi(module = "my-mod")]
fn dashed(_msg: &mut SipMsg) {}

#[kemi(name = "")]
fn empty(_msg: &mut SipMsg) {}

#[kemi(name = "a.b")]
fn dotted(_msg: &mut SipMsg) {}

fn main() {}
