//! Operator commands that edit the store directly (`kamctl`-style), usable while sipd runs.

pub mod address;
pub mod user;
