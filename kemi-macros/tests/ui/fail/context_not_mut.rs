use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn peek(msg: &SipMsg) -> bool {
    msg.route.flags != 0
}

fn main() {}
