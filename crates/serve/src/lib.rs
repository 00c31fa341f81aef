//! leadflow-serve: using an exported model directory (or a registered `name@alias`): loading
//! it ([`ModelDir`]), batch scoring and checking ([`batch`]: `leadflow model predict` and
//! `check`), drift of a batch against the training table ([`drift`]: `leadflow model drift`), and
//! the online scoring server ([`server`]: `leadflow model serve`). The deploy stage
//! writes what this crate reads; neither depends on the other.

pub mod batch;
pub mod drift;
mod error;
pub mod inputs;
pub mod server;

pub use batch::{
    predict, predict_stream, predict_with, validate, Explanation, InputKind, ModelDir, PredictOptions, Scored, Validation, ValidationSpec,
};
pub use error::{Error, Result};
