//! relab-core: the host of the relab pipeline.
//!
//! The four component slots ([`component`]), the plugin [`registry`], YAML [`experiment`]s, the staged
//! [`pipeline`] with content-hash caching, datasets ([`data`]), artifacts ([`artifact`]) and the backend choice
//! ([`device`]). Plugins depend on this crate; this crate never names a plugin.

pub mod abi;
pub mod artifact;
pub mod bench;
pub mod component;
pub mod data;
pub mod device;
pub mod error;
pub mod experiment;
pub mod linalg;
pub mod nn;
pub mod pipeline;
pub mod progress;
pub mod registry;
pub mod report;
pub mod testing;
pub mod train;
/// Re-exported so that plugins build against exactly the host's burn.
pub use burn;
pub use error::{Error, Result};
/// Re-exported so that `submit_plugin!` works in plugin crates without their own dependency on it.
pub use inventory;
/// Re-exported so that a plugin crate can depend on relab-core alone, and a plugin library uses the host's very
/// versions of the crates whose types cross the boundary (serde values, the stage RNG, log records).
pub use {rand, serde, serde_json, tracing};
