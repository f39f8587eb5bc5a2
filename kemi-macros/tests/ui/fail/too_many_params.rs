use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn seven(_msg: &mut SipMsg, a: i32, b: i32, c: &str, d: &str, e: i32, f: i32, g: &str) {
    let _ = (a, b, c, d, e, f, g);
}

fn main() {}
