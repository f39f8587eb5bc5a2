//! Validation of a [`KemiFn`](crate::model::KemiFn). (Minimal; to be completed.)
