//! relab-core: the host of the relab pipeline.
//!
//! The four component slots ([`component`]), the plugin [`registry`], YAML [`experiment`]s, the staged
//! [`pipeline`] with content-hash caching, run reports ([`report`]), datasets ([`data`]), artifacts ([`artifact`])
//! and the file formats they are stored in ([`formats`]), the networks ([`nn`]) and the CPU kernels under them
//! ([`kernels`]), shared numerics ([`linalg`]), training parts ([`train`]) and the backend choice ([`device`]).
//! Plugins depend on this crate; this crate never names a plugin.

// The paths `#[params]` generates (`::relab_core::...`) resolve inside this crate too.
extern crate self as relab_core;

pub mod abi;
pub mod artifact;
pub mod bench;
pub mod component;
pub mod data;
pub mod device;
pub mod error;
pub mod experiment;
pub mod formats;
pub mod interrupt;
pub mod kernels;
#[cfg(test)]
mod layering;
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

/// A hash of the calling crate's sources, computed at compile time; `submit_plugin!` and `export_plugins!` put it in
/// each plugin's [`registry::PluginEntry::source`], which the stage cache's keys include.
#[doc(hidden)]
pub use relab_macros::crate_source_hash;
/// A plugin's parameters declared once: the serde struct (`deny_unknown_fields`, `default`), its `Default`, its
/// help lines and its range checks, from one struct.
///
/// ```ignore
/// #[relab_core::params]
/// #[derive(Debug, Clone, PartialEq)]
/// pub struct MyParams {
///     /// neighbours of each node
///     ///
///     /// Later paragraphs of a doc comment are for readers of the code; the first is the help line that
///     /// `relab plugins describe` prints.
///     #[param(default = 50, min = 1)]
///     pub k: usize,
///     /// damping, in [0, 1)
///     #[param(default = 0.99, min = 0.0, below = 1.0)]
///     pub alpha: f64,
///     /// a field without `default` takes its type's `Default`
///     pub weights: Option<std::path::PathBuf>,
/// }
///
/// ```
///
/// `parse_params::<MyParams>` then gives `k: 50` by default and refuses `k: 0` with `k: must be at least 1, found
/// 0`; `relab plugins describe` prints `neighbours of each node` beside `k`'s default (the registry's tests try
/// exactly this).
///
/// Field attributes, all optional: `#[param(default = EXPR)]` (else the type's `Default`); the range checks
/// `min = X` (≥), `max = X` (≤), `above = X` (>), `below = X` (<), which [`registry::parse_params`] runs on the value
/// (on each item of an `Option`, `Vec` or array) and which name the key when they fail; `nested` for a field that
/// is itself a `#[params]` struct (or an `Option` of one), whose checks then run too, under this key. Struct
/// arguments, all optional: `#[params(paths("key", ...))]` ([`registry::PluginParams::PATHS`]), `needs = FN` (an
/// `fn(&Self) -> Vec<StageNeed>`, [`registry::PluginParams::needs`]) and `manual_default` (write `Default` by hand).
/// Checks across several parameters stay in the plugin's `from_params`.
pub use relab_macros::params;
