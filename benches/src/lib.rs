//! Benchmarks live in `benches/`; the load harness in `load/`.
