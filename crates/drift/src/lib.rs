//! leadflow-drift: does new data still look like what the model learned from?
//!
//! - [`reference`]: the training table's profile, per input column — a quantile sketch, decile
//!   bins and range of a continuous column; the level counts of a categorical one; the missing
//!   count — built once by the data stage and saved with the model (`reference.json`).
//! - [`stats`]: population stability index, the two-sample Kolmogorov-Smirnov statistic and its
//!   asymptotic p-value, the chi-squared test of homogeneity (scipy is the tests' oracle).
//! - [`check`]: a batch's columns against the reference, judged by [`Thresholds`], as JSON and
//!   Markdown (with a chart per drifted column).
//!
//! It knows nothing of CSV files, models or stores: callers hand it column values.

pub mod check;
pub mod reference;
pub mod stats;

pub use check::{compare, Batch, ColumnDrift, Report, Thresholds, Values};
pub use reference::{Column, Reference};
