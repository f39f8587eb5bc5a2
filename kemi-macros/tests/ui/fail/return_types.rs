use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn string(_msg: &mut SipMsg) -> String {
    String::new()
}

#[kemi]
fn long(_msg: &mut SipMsg) -> i64 {
    0
}

#[kemi]
fn option(_msg: &mut SipMsg) -> Option<bool> {
    None
}

#[kemi]
fn result(_msg: &mut SipMsg) -> Result<i32, ()> {
    Ok(1)
}

#[kemi]
fn float(_msg: &mut SipMsg) -> f64 {
    0.0
}

fn main() {}
