//! Name → factory tables for the four component slots.
//!
//! Entries are plain data (`&'static str` and `fn` pointers), so the same entry type serves plugins compiled in
//! (collected with `inventory`) and plugins from shared libraries that link the host's `relab-core` ([`dynamic`]).

pub mod dynamic;
mod entry;
mod library_file;
mod params;
mod table;

pub use dynamic::{DynamicPlugins, PluginLibrary};
pub use entry::{Factory, PluginEntry, PluginInfo, Slot, StaticPlugin};
pub use params::{
    ParamDoc, ParamError, PluginParams, Range, RangeValue, StageNeed, check_range, describe_params, parse_params,
};
pub use table::{Origin, Registry};
