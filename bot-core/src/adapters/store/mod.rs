//! State store implementations.

pub mod memory;
