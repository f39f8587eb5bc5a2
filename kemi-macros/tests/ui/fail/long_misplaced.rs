#![allow(unused)]

use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn long_alone(_msg: &mut SipMsg, v: i64) {}

#[kemi]
fn int_long(_msg: &mut SipMsg, k: i32, v: i64) {}

#[kemi]
fn long_str(_msg: &mut SipMsg, v: i64, k: &str) {}

#[kemi]
fn str_long_int(_msg: &mut SipMsg, k: &str, v: i64, n: i32) {}

fn main() {}
