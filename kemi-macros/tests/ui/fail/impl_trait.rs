use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn generic_arg(_msg: &mut SipMsg, s: impl AsRef<str>) {
    let _ = s.as_ref();
}

#[kemi]
fn opaque(_msg: &mut SipMsg) -> impl Copy {
    1
}

fn main() {}
