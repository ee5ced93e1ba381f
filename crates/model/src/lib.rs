//! odc-model
