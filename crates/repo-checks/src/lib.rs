//! Test-only crate: see `tests/repo/`. It holds no code of its own.
