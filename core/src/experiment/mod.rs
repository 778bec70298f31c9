//! Experiment files: YAML schema, `extends:`, `--set` overrides, sweeps and validation errors.
//!
//! [`load`] reads a file and the files it extends (deep merge, the extending file wins), applies `--set` overrides,
//! expands the `sweep:` grid and checks every point against the schema and the plugin [`Registry`] before returning
//! anything. Every error names the file, line and column (or the `--set` text) of the value at fault, its key path,
//! what was expected and, for a misspelt name, the nearest valid one.
//!
//! Order of precedence, lowest first: extended files (in the order listed), the file itself, the sweep point, the
//! `--set` overrides. A `--set` of a swept key fixes it and drops that sweep axis; `--set sweep.<key path>=[...]`
//! changes the sweep itself.

mod error;
mod load;
mod origin;
mod overrides;
mod paths;
mod schema;
mod sweep;
mod tree;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrorKind, Location};
pub use schema::*;
use serde_yaml::{Mapping, Value};

use crate::registry::Registry;

/// One run of an experiment: a sweep point, checked and ready for the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRun {
    /// `seed=1,stages.propagate.k=50`; empty when the experiment has no sweep.
    pub label: String,
    /// The label as a folder name safe on any file system; empty when the experiment has no sweep.
    pub folder: String,
    pub experiment: Experiment,
    /// The resolved tree (extends merged, overrides and sweep point applied, `sweep`/`extends` removed, paths
    /// absolute, `name` filled in): what the run folder's `config.yaml` holds.
    pub value: Value,
}

/// Reads the experiment at `path`, applies `--set` overrides (`key.path=value`) and returns one checked run per
/// sweep point (a single one without `sweep:`), in sweep order.
pub fn load(path: &Path, overrides: &[String], registry: &Registry) -> Result<Vec<ResolvedRun>, ConfigError> {
    resolve(load::load_file(path)?, path, overrides, registry)
}

/// As [`load`], for text that claims to come from `file_name` (which need not exist): `extends:` and relative paths
/// are taken relative to its directory, and `name` defaults to its stem.
pub fn load_str(
    text: &str,
    file_name: &Path,
    overrides: &[String],
    registry: &Registry,
) -> Result<Vec<ResolvedRun>, ConfigError> {
    resolve(load::load_text(text, file_name)?, file_name, overrides, registry)
}

/// The plugin libraries the experiment at `path` names (`plugins:`, after `extends:` and `--set`), absolute: what
/// to load into the [`Registry`] before [`load`] checks the stages that use them.
pub fn plugin_libraries(path: &Path, overrides: &[String]) -> Result<Vec<PathBuf>, ConfigError> {
    libraries_of(load::load_file(path)?, overrides)
}

fn libraries_of(loaded: load::Loaded, overrides: &[String]) -> Result<Vec<PathBuf>, ConfigError> {
    let load::Loaded { mut tree, mut origins } = loaded;
    for o in overrides {
        let o = overrides::parse(o)?;
        if !o.is_sweep() {
            overrides::apply(&mut tree, &mut origins, &o)?;
        }
    }
    let keys = paths::library_keys(&tree);
    paths::absolutize_keys(&mut tree, &origins, keys.clone());
    // Anything but a list of paths is left for the schema check of `load` to report.
    Ok(keys.iter().filter_map(|k| tree::get(&tree, k).and_then(Value::as_str)).map(PathBuf::from).collect())
}

fn resolve(
    loaded: load::Loaded,
    file: &Path,
    overrides: &[String],
    registry: &Registry,
) -> Result<Vec<ResolvedRun>, ConfigError> {
    let overrides = overrides.iter().map(|o| overrides::parse(o)).collect::<Result<Vec<_>, _>>()?;
    let (on_sweep, on_experiment): (Vec<_>, Vec<_>) = overrides.into_iter().partition(|o| o.is_sweep());
    let load::Loaded { mut tree, mut origins } = loaded;
    for o in &on_sweep {
        overrides::apply(&mut tree, &mut origins, o)?;
    }
    let mut sweep = sweep::Sweep::take(&mut tree, &origins)?;
    sweep.drop_axes_set_by(&on_experiment);
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();

    let mut runs = Vec::new();
    for point in sweep.points() {
        let in_point = |e: ConfigError| e.in_point(&point.label);
        let (mut tree, mut origins) = (tree.clone(), origins.clone());
        sweep.apply(&point, &mut tree, &mut origins).map_err(in_point)?;
        for o in &on_experiment {
            overrides::apply(&mut tree, &mut origins, o).map_err(in_point)?;
        }
        origins.remove_under(&["sweep".to_string()]);
        default_name(&mut tree, &stem);
        paths::absolutize(&mut tree, &origins, registry);
        let experiment = validate::check(&tree, &origins, registry).map_err(in_point)?;
        runs.push(ResolvedRun { label: point.label, folder: point.folder, experiment, value: tree });
    }
    Ok(runs)
}

/// `name:` first in the tree, the file's stem when absent or `~`.
fn default_name(tree: &mut Value, stem: &str) {
    let Value::Mapping(map) = tree else { return };
    if map.get("name").is_some_and(|n| !n.is_null()) {
        return;
    }
    let mut named = Mapping::new();
    named.insert(Value::from("name"), Value::from(stem));
    named.extend(std::mem::take(map).into_iter().filter(|(k, _)| k.as_str() != Some("name")));
    *map = named;
}

#[cfg(test)]
mod tests;
