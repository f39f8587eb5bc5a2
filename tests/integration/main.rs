//! sipd integration tests (one binary).
