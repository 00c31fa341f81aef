//! leadflow-serve: using an exported model directory (or a registered `name@alias`): loading
//! it ([`ModelDir`]), batch scoring and checking ([`batch`]: `leadflow model predict` and
//! `check`), and the online scoring server ([`server`]: `leadflow model serve`). The deploy stage
//! writes what this crate reads; neither depends on the other.

pub mod batch;
mod error;
pub mod server;

pub use batch::{predict, validate, InputKind, ModelDir, Validation, ValidationSpec};
pub use error::{Error, Result};
