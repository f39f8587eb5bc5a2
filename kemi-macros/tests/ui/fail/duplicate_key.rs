use kemi_runtime::{kemi, SipMsg};

#[kemi(name = "a", module = "m", name = "b")]
fn twice(_msg: &mut SipMsg) {}

fn main() {}
