//! leadflow-core's tests, one module a source file.
mod artifacts;
mod dataset;
mod hash;
mod params;
mod split;
