//! Checks of the repository itself, split by concern: `tidy` (grep-checked invariants of the
//! code and docs), `workflow` (the GitHub workflows' structure and scripts), `checks` (the real
//! checkers: actionlint, GitHub's schemas, shellcheck, hadolint, compose config, the pin
//! checker), `setup` (ci.sh's prerequisite detection on fake roots).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod checks;
mod setup;
mod tidy;
mod workflow;
