#![allow(unused)]

use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn int_ref(_msg: &mut SipMsg, n: &i32) {}

#[kemi]
fn mut_str(_msg: &mut SipMsg, s: &mut str) {}

#[kemi]
fn static_str(_msg: &mut SipMsg, s: &'static str) {}

#[kemi]
fn second_context(_msg: &mut SipMsg, other: &mut SipMsg) {}

fn main() {}
