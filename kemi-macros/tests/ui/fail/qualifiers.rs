use kemi_runtime::{kemi, SipMsg};

#[kemi]
async fn later(_msg: &mut SipMsg) {}

#[kemi]
unsafe fn risky(_msg: &mut SipMsg) {}

#[kemi]
extern "C" fn c_abi(_msg: &mut SipMsg) {}

#[kemi]
const fn constant(_msg: &mut SipMsg) -> i32 {
    1
}

fn main() {}
