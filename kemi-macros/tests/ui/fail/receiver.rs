use kemi_runtime::{kemi, SipMsg};

struct Router;

impl Router {
    #[kemi]
    fn route(&mut self, _text: &str) {}

    #[kemi]
    fn consume(self: Box<Self>, _msg: &mut SipMsg) {}
}

fn main() {}
