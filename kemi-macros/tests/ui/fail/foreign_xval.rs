// A type that passes the syntactic check by name but is not the runtime's: the trait backstop
// (`#[diagnostic::on_unimplemented]` on `KemiReturn`) reports at the type.
use kemi_runtime::{kemi, SipMsg};

struct Xval;

#[kemi]
fn value(_msg: &mut SipMsg) -> Xval {
    Xval
}

fn main() {}
