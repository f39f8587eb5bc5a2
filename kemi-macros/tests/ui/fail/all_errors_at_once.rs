// One export with many problems reports all of them, each on its own token; the function is
// still emitted, so calling it gives no "cannot find function" cascade, and a good export in
// the same file adds nothing.
#![allow(unused)]
use kemi_runtime::{kemi, SipMsg};

#[kemi(modul = "x", name = "end")]
async fn broken<T>(msg: &SipMsg, a: f64, b: i32) -> String {
    String::new()
}

#[kemi(module = "ok")]
fn fine(_msg: &mut SipMsg, _a: i32) -> bool {
    true
}

fn main() {
    let _ = broken::<u8>;
    let _ = fine;
}
