// A parameter type whose last segment is `i32` but that is not the primitive: the trait backstop
// (`#[diagnostic::on_unimplemented]` on `KemiParam`) reports at the type.
use kemi_runtime::{kemi, SipMsg};

mod units {
    #[allow(non_camel_case_types)]
    pub struct i32;
}

#[kemi]
fn count(_msg: &mut SipMsg, _n: units::i32) {}

fn main() {}
