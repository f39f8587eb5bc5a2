// A context type named `SipMsg` that is not the runtime's: the mismatch is reported at the type.
use kemi_runtime::kemi;

struct SipMsg;

#[kemi]
fn context(_msg: &mut SipMsg) {}

fn main() {}
