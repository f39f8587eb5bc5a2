use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn maybe(_msg: &mut SipMsg, #[cfg(any())] extra: i32, s: &str) {
    let _ = s;
}

fn main() {}
