//! The `relab` command: one binary that links the host and every compiled-in plugin.

pub mod allocator;
pub mod cli;

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
