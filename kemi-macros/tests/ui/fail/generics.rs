use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn typed<T: Default>(_msg: &mut SipMsg) {}

#[kemi]
fn constant<const N: usize>(_msg: &mut SipMsg) {}

#[kemi]
fn bounded<'a>(_msg: &'a mut SipMsg, s: &'a str)
where
    'a: 'static,
{
    let _ = s;
}

fn main() {}
