//! From a resolved tree to a checked [`Experiment`]: the schema (serde_yaml through serde_path_to_error, errors
//! positioned at the offending key or value), then each plugin stage (exactly one of `plugin` and `from`, the plugin
//! registered for its slot, its parameters accepted by the plugin), then the files the experiment names.

use serde_yaml::{Mapping, Value};

use super::error::{ConfigError, ConfigErrorKind, classify, missing_field, nearest, unknown_field};
use super::origin::Origins;
use super::schema::{Experiment, PluginStage};
use super::tree::{self, KeyPath};
use crate::registry::{ParamError, Registry, Slot};

/// The typed experiment, once everything in it checks out.
pub(crate) fn check(tree: &Value, origins: &Origins, registry: &Registry) -> Result<Experiment, ConfigError> {
    let experiment = typed(tree, origins)?;
    let stages = &experiment.stages;
    let plugin_stages = [
        (Slot::Pretrain, &stages.pretrain),
        (Slot::Propagate, &stages.propagate),
        (Slot::Select, &stages.select),
        (Slot::Train, &stages.train),
    ];
    for (slot, stage) in plugin_stages {
        if let Some(stage) = stage {
            plugin_stage(slot, stage, origins, registry)?;
        }
    }
    for (i, library) in experiment.plugins.iter().enumerate() {
        let key = vec!["plugins".to_string(), i.to_string()];
        let kind = if !library.exists() {
            ConfigErrorKind::FileNotFound { path: library.clone() }
        } else if !registry.has_library(library) {
            ConfigErrorKind::Invalid {
                message: format!(
                    "plugin library {} is not loaded into the registry (relab loads `plugins:` before it checks the \
                     stages; a program of its own reads them with experiment::plugin_libraries and calls \
                     Registry::load_library)",
                    library.display()
                ),
            }
        } else {
            continue;
        };
        return Err(ConfigError::new(origins.value_location(&key), tree::dotted(&key), kind));
    }
    let mut files = vec![
        (path(&["dataset", "seeds"]), experiment.dataset.seeds.as_deref()),
        (path(&["stages", "features", "from"]), stages.features.as_ref().and_then(|f| f.from.as_deref())),
    ];
    for (slot, stage) in plugin_stages {
        files.push((path(&["stages", slot.stage(), "from"]), stage.as_ref().and_then(|s| s.from.as_deref())));
    }
    for (key, file) in files {
        if let Some(file) = file.filter(|f| !f.exists()) {
            return Err(ConfigError::new(
                origins.value_location(&key),
                tree::dotted(&key),
                ConfigErrorKind::FileNotFound { path: file.to_path_buf() },
            ));
        }
    }
    Ok(experiment)
}

fn path(parts: &[&str]) -> KeyPath {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The schema's view of the tree.
fn typed(tree: &Value, origins: &Origins) -> Result<Experiment, ConfigError> {
    serde_path_to_error::deserialize::<_, Experiment>(tree.clone()).map_err(|e| {
        let at: KeyPath = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect();
        let message = e.into_inner().to_string();
        positioned(at, &message, None, origins)
    })
}

/// A serde message about the value at `at`, as a positioned error: an unknown or missing key points at the key (and
/// puts it on the path), anything else at the value.
fn positioned(mut at: KeyPath, message: &str, known_keys: Option<&[String]>, origins: &Origins) -> ConfigError {
    let kind = classify(message, known_keys);
    let location = match (&kind, unknown_field(message), missing_field(message)) {
        (ConfigErrorKind::UnknownKey { key, .. }, _, _) => {
            if at.last() != Some(key) {
                at.push(key.clone());
            }
            origins.key_location(&at)
        }
        (ConfigErrorKind::MissingKey, _, Some(field)) => {
            let location = origins.key_location(&at);
            at.push(field);
            location
        }
        _ => origins.value_location(&at),
    };
    ConfigError::new(location, tree::dotted(&at), kind)
}

/// A stage run by a plugin (or read from a file): exactly one of `plugin` and `from`, the plugin registered for the
/// slot, and parameters it accepts.
fn plugin_stage(slot: Slot, stage: &PluginStage, origins: &Origins, registry: &Registry) -> Result<(), ConfigError> {
    let base = path(&["stages", slot.stage()]);
    let at = |key: &str| [base.as_slice(), &[key.to_string()]].concat();
    let source_error = |key: &KeyPath, message: String| {
        ConfigError::new(origins.key_location(key), tree::dotted(&base), ConfigErrorKind::StageSource { message })
    };
    match (&stage.plugin, &stage.from) {
        (None, None) => {
            let names = registry.names(slot);
            let known = if names.is_empty() {
                "none is registered".to_string()
            } else {
                format!("known: {}", names.join(", "))
            };
            Err(source_error(
                &base,
                format!(
                    "needs `plugin:` (a {}; {known}) or `from:` (a file or stage folder holding the stage's output)",
                    slot.kind()
                ),
            ))
        }
        (Some(_), Some(_)) => Err(source_error(
            &at("from"),
            "both `plugin` and `from` are given; keep one (to read an inherited plugin stage from a file, also set \
             `plugin: ~`)"
                .to_string(),
        )),
        (None, Some(_)) => match stage.params.iter().find(|(_, v)| !v.is_null()) {
            Some((key, _)) => {
                let key = tree::segment(key);
                Err(source_error(
                    &at(&key),
                    format!(
                        "`{key}` is a plugin parameter, but this stage is read from a file (`from:`); remove it \
                         (or set it to ~)"
                    ),
                ))
            }
            None => Ok(()),
        },
        (Some(name), None) => {
            let entry = registry.get(slot, name).map_err(|e| {
                ConfigError::new(
                    origins.value_location(&at("plugin")),
                    tree::dotted(&at("plugin")),
                    ConfigErrorKind::UnknownPlugin {
                        message: e.to_string(),
                        suggestion: nearest(name, registry.names(slot)),
                    },
                )
            })?;
            (entry.validate)(&Value::Mapping(stage.params.clone()))
                .map_err(|e| param_error(&base, e, &stage.params, origins))
        }
    }
}

/// A plugin's complaint about its parameters, positioned at the offending key inside the stage.
fn param_error(base: &[String], e: ParamError, params: &Mapping, origins: &Origins) -> ConfigError {
    let mut at = base.to_vec();
    // An unknown key is named in the message; cross-parameter checks may name a key that is not there.
    let named = e.path.first().is_some_and(|k| params.iter().any(|(p, _)| tree::segment(p) == *k));
    if named || unknown_field(&e.message).is_some() {
        at.extend(e.path.iter().cloned());
    }
    let mut error = positioned(at, &e.message, Some(&e.known_keys), origins);
    if !named && !e.path.is_empty() && unknown_field(&e.message).is_none() {
        // Keep the key the plugin named in the message, though it is not written in the stage.
        *error.kind = ConfigErrorKind::Invalid { message: e.to_string() };
    }
    error
}
