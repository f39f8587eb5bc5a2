use kemi_runtime::{kemi, SipMsg};

#[kemi(modul = "pv")]
fn get(_msg: &mut SipMsg) {}

fn main() {}
