use serde_yaml::Value;

use super::params::{ParamDoc, ParamError, PluginParams, StageNeed, describe_params, parse_params};
use crate::component::{Propagator, SemiSupervisedLearner, SslMethod};

type SelectorBox = Box<dyn crate::component::Selector>;

/// The slot a plugin fills: a [`StageKind`] other than `Features`, named as in the experiment's `stages:`
/// ([`StageKind::SLOTS`] lists them).
pub use crate::component::StageKind as Slot;

/// Builds a component from its (already validated) parameters. The variant fixes the slot.
#[derive(Clone, Copy)]
pub enum Factory {
    Pretrain(fn(&Value) -> Result<Box<dyn SslMethod>, ParamError>),
    Propagate(fn(&Value) -> Result<Box<dyn Propagator>, ParamError>),
    Select(fn(&Value) -> Result<SelectorBox, ParamError>),
    Train(fn(&Value) -> Result<Box<dyn SemiSupervisedLearner>, ParamError>),
}

/// One plugin: what `plugins list` shows and what the pipeline instantiates.
#[derive(Clone, Copy)]
pub struct PluginEntry {
    pub name: &'static str,
    pub summary: &'static str,
    /// The version of the crate that defines the plugin.
    pub version: &'static str,
    /// A hash of the sources of the crate that defines the plugin ([`PluginEntry::with_source`]; empty when not
    /// given): part of the stage cache's key, so an edited plugin never reuses a result of the code before the edit.
    pub source: &'static str,
    pub validate: fn(&Value) -> Result<(), ParamError>,
    /// The parameters with every default filled in, as the plugin's parameter struct writes them back (what
    /// `stage.json`, `config.yaml` and the stage cache's key record).
    pub resolve: fn(&Value) -> Result<Value, ParamError>,
    pub describe: fn() -> Vec<ParamDoc>,
    /// The other stages the parameters need ([`PluginParams::needs`]); none for parameters that do not parse.
    pub needs: fn(&Value) -> Vec<StageNeed>,
    /// Parameters whose values are file paths ([`PluginParams::PATHS`]).
    pub paths: &'static [&'static str],
    pub factory: Factory,
}

impl std::fmt::Debug for PluginEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEntry").field("slot", &self.slot()).field("name", &self.name).finish()
    }
}

impl PluginEntry {
    pub fn slot(&self) -> Slot {
        match self.factory {
            Factory::Pretrain(_) => Slot::Pretrain,
            Factory::Propagate(_) => Slot::Propagate,
            Factory::Select(_) => Slot::Select,
            Factory::Train(_) => Slot::Train,
        }
    }

    pub const fn pretrain<T: PluginInfo + SslMethod>(version: &'static str) -> Self {
        Self::of::<T>(version, Factory::Pretrain(build_pretrain::<T>))
    }

    pub const fn propagate<T: PluginInfo + Propagator>(version: &'static str) -> Self {
        Self::of::<T>(version, Factory::Propagate(build_propagate::<T>))
    }

    pub const fn select<T: PluginInfo + crate::component::Selector>(version: &'static str) -> Self {
        Self::of::<T>(version, Factory::Select(build_select::<T>))
    }

    pub const fn train<T: PluginInfo + SemiSupervisedLearner>(version: &'static str) -> Self {
        Self::of::<T>(version, Factory::Train(build_train::<T>))
    }

    /// The same entry, with the hash of its crate's sources (`relab_core::crate_source_hash!()`).
    pub const fn with_source(mut self, source: &'static str) -> Self {
        self.source = source;
        self
    }

    const fn of<T: PluginInfo>(version: &'static str, factory: Factory) -> Self {
        PluginEntry {
            name: T::NAME,
            summary: T::SUMMARY,
            version,
            source: "",
            validate: validate::<T>,
            resolve: resolve::<T>,
            describe: describe_params::<T::Params>,
            needs: needs::<T>,
            paths: <T::Params as PluginParams>::PATHS,
            factory,
        }
    }
}

/// What a component type says about itself so the registry can build it from YAML.
pub trait PluginInfo: Sized + 'static {
    const NAME: &'static str;
    /// One line for `plugins list`.
    const SUMMARY: &'static str;
    type Params: PluginParams;
    /// Builds the component; checks that span several parameters go here and return a [`ParamError`].
    fn from_params(params: Self::Params) -> Result<Self, ParamError>;
}

fn validate<T: PluginInfo>(v: &Value) -> Result<(), ParamError> {
    T::from_params(parse_params::<T::Params>(v)?).map(|_| ())
}

fn resolve<T: PluginInfo>(v: &Value) -> Result<Value, ParamError> {
    let params = parse_params::<T::Params>(v)?;
    serde_yaml::to_value(&params).map_err(|e| ParamError {
        path: Vec::new(),
        message: format!("the parameters do not serialise: {e}"),
        known_keys: Vec::new(),
    })
}

fn needs<T: PluginInfo>(v: &Value) -> Vec<StageNeed> {
    parse_params::<T::Params>(v).map(|p| p.needs()).unwrap_or_default()
}

fn build<T: PluginInfo>(v: &Value) -> Result<T, ParamError> {
    T::from_params(parse_params::<T::Params>(v)?)
}

fn build_pretrain<T: PluginInfo + SslMethod>(v: &Value) -> Result<Box<dyn SslMethod>, ParamError> {
    Ok(Box::new(build::<T>(v)?))
}

fn build_propagate<T: PluginInfo + Propagator>(v: &Value) -> Result<Box<dyn Propagator>, ParamError> {
    Ok(Box::new(build::<T>(v)?))
}

fn build_select<T: PluginInfo + crate::component::Selector>(v: &Value) -> Result<SelectorBox, ParamError> {
    Ok(Box::new(build::<T>(v)?))
}

fn build_train<T: PluginInfo + SemiSupervisedLearner>(v: &Value) -> Result<Box<dyn SemiSupervisedLearner>, ParamError> {
    Ok(Box::new(build::<T>(v)?))
}

/// The `inventory` item a plugin crate submits; see [`crate::submit_plugin`].
pub struct StaticPlugin {
    pub entry: PluginEntry,
    /// The crate that submitted it (`env!("CARGO_PKG_NAME")`), shown by `plugins list`.
    pub crate_name: &'static str,
}

inventory::collect!(StaticPlugin);

/// Registers a component type as a compiled-in plugin of the given slot:
/// `relab_core::submit_plugin!(propagate, NearestSeed);`.
#[macro_export]
macro_rules! submit_plugin {
    ($slot:ident, $ty:ty) => {
        $crate::inventory::submit! {
            $crate::registry::StaticPlugin {
                entry: $crate::registry::PluginEntry::$slot::<$ty>(env!("CARGO_PKG_VERSION"))
                    .with_source($crate::crate_source_hash!()),
                crate_name: env!("CARGO_PKG_NAME"),
            }
        }
    };
}
