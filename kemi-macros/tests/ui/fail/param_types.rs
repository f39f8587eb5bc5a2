#![allow(unused)]

use kemi_runtime::{kemi, SipMsg};

#[kemi]
fn owned_string(_msg: &mut SipMsg, s: String) {}

#[kemi]
fn float(_msg: &mut SipMsg, f: f64) {}

#[kemi]
fn optional(_msg: &mut SipMsg, v: Option<i32>) {}

#[kemi]
fn bytes(_msg: &mut SipMsg, b: &[u8]) {}

#[kemi]
fn unsigned(_msg: &mut SipMsg, n: u32) {}

fn main() {}
