use kemi_runtime::{kemi, SipMsg};

// The context was forgotten: the first script parameter stands in its place.
#[kemi]
fn forgot(text: &str) {
    let _ = text;
}

// By value.
#[kemi]
fn owned(msg: SipMsg) {
    drop(msg);
}

// Another type altogether.
#[kemi]
fn other(msg: &mut String) {
    msg.clear();
}

fn main() {}
