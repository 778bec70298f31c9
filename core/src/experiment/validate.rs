//! From a resolved tree to a checked [`Experiment`]: the schema (serde_yaml through serde_path_to_error, errors
//! positioned at the offending key or value), then each plugin stage (exactly one of `plugin` and `from`, the plugin
//! registered for its slot, its parameters accepted by the plugin), the stages each plugin's parameters need, then
//! the files the experiment names. The dataset must be one relab knows, and its counts positive; the name must be a
//! plain folder name (the run folder is `runs/<name>`).

use serde_yaml::{Mapping, Value};

use super::error::{ConfigError, ConfigErrorKind, classify, missing_field, nearest, unknown_field};
use super::origin::Origins;
use super::schema::{Experiment, FeatureSource, PluginStage, SLURM_SIGNALS, Stages};
use super::tree::{self, KeyPath};
use crate::component::StageKind;
use crate::data::{KNOWN_DATASETS, LABELS_SEED_BESIDE_SEEDS};
use crate::registry::{ParamError, Registry, Slot, StageNeed};

/// The typed experiment, once everything in it checks out.
pub(crate) fn check(tree: &Value, origins: &Origins, registry: &Registry) -> Result<Experiment, ConfigError> {
    let experiment = typed(tree, origins)?;
    let stages = &experiment.stages;
    name(&experiment, origins)?;
    dataset(&experiment, origins)?;
    slurm(&experiment, origins)?;
    for (slot, stage) in stages.plugin_stages() {
        plugin_stage(slot, stage, origins, registry)?;
    }
    host_needs(stages, origins)?;
    for (slot, stage) in stages.plugin_stages() {
        stage_needs(slot, stage, stages, origins, registry)?;
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
    for (slot, stage) in stages.plugin_stages() {
        files.push((path(&["stages", slot.name(), "from"]), stage.from.as_deref()));
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

/// The name is one folder's name: `runs/<name>` must stay inside `runs/`.
fn name(experiment: &Experiment, origins: &Origins) -> Result<(), ConfigError> {
    let Some(name) = experiment.name.as_deref() else { return Ok(()) };
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if plain {
        return Ok(());
    }
    let key = path(&["name"]);
    Err(ConfigError::new(
        origins.value_location(&key),
        tree::dotted(&key),
        ConfigErrorKind::Invalid {
            message: format!(
                "{name:?} is not a plain folder name: the run folder is runs/<name>, so the name must not be empty, \
                 `.` or `..`, nor hold `/` or `\\`"
            ),
        },
    ))
}

/// The Slurm settings make a valid batch script: a signal a shell can trap, counts of at least one, and extra
/// `#SBATCH` entries that are options on one line.
fn slurm(experiment: &Experiment, origins: &Origins) -> Result<(), ConfigError> {
    let Some(slurm) = &experiment.slurm else { return Ok(()) };
    let at = |key: &[&str], kind: ConfigErrorKind| {
        let key = [&["slurm"][..], key].concat();
        let key = path(&key);
        Err(ConfigError::new(origins.value_location(&key), tree::dotted(&key), kind))
    };
    if !SLURM_SIGNALS.contains(&slurm.signal.as_str()) {
        return at(
            &["signal"],
            ConfigErrorKind::UnknownValue {
                value: slurm.signal.clone(),
                expected: SLURM_SIGNALS.iter().map(|s| s.to_string()).collect(),
                suggestion: nearest(&slurm.signal, SLURM_SIGNALS.iter().copied()),
            },
        );
    }
    let counts = [("cpus", slurm.cpus), ("parallel", slurm.parallel), ("grace", Some(slurm.grace as usize))];
    for (key, n) in counts {
        if n == Some(0) {
            return at(&[key], ConfigErrorKind::Invalid { message: "must be at least 1, found 0".into() });
        }
    }
    for (i, line) in slurm.sbatch.iter().enumerate() {
        if !line.starts_with('-') || line.contains('\n') {
            let message = format!(
                "{line:?} is not an sbatch option: each entry is one option as on sbatch's command line, such as \
                 `--constraint=a100` (relab writes the `#SBATCH` before it)"
            );
            return at(&["sbatch", &i.to_string()], ConfigErrorKind::Invalid { message });
        }
    }
    Ok(())
}

/// The dataset is one relab knows (whether its files are on this machine is the pipeline's business, and a note of
/// `relab validate`), its counts are positive, and a labels seed has a draw to seed.
fn dataset(experiment: &Experiment, origins: &Origins) -> Result<(), ConfigError> {
    let dataset = &experiment.dataset;
    if !KNOWN_DATASETS.contains(&dataset.name.as_str()) {
        let key = path(&["dataset", "name"]);
        return Err(ConfigError::new(
            origins.value_location(&key),
            tree::dotted(&key),
            ConfigErrorKind::UnknownValue {
                value: dataset.name.clone(),
                expected: KNOWN_DATASETS.iter().map(|s| s.to_string()).collect(),
                suggestion: nearest(&dataset.name, KNOWN_DATASETS),
            },
        ));
    }
    if dataset.seeds.is_some() && dataset.labels_seed.is_some() {
        let key = path(&["dataset", "labels_seed"]);
        return Err(ConfigError::new(
            origins.value_location(&key),
            tree::dotted(&key),
            ConfigErrorKind::Invalid { message: LABELS_SEED_BESIDE_SEEDS.into() },
        ));
    }
    let features_pca = experiment.stages.features.as_ref().and_then(|f| f.pca);
    let counts = dataset.counts().into_iter().map(|(key, n)| (path(&["dataset", key]), n));
    for (key, n) in counts.chain([(path(&["stages", "features", "pca"]), features_pca)]) {
        if n == Some(0) {
            return Err(ConfigError::new(
                origins.value_location(&key),
                tree::dotted(&key),
                ConfigErrorKind::Invalid { message: "must be at least 1, found 0".into() },
            ));
        }
    }
    Ok(())
}

/// The stages the host's own stages need: features from an encoder need the pretrain stage, a selector run by a
/// plugin needs the propagate stage.
fn host_needs(stages: &Stages, origins: &Origins) -> Result<(), ConfigError> {
    let mut needs = Vec::new();
    // (A features stage the file leaves out, implied by a propagate stage, is left to the pipeline's message.)
    if let Some(features) = &stages.features
        && features.source == FeatureSource::Encoder
        && features.from.is_none()
    {
        let why = "features come from the pretrain stage's encoder (`source: encoder`, the default; `source: pixels` \
                   or `from: FILE.npy` take them from elsewhere)";
        needs.push((path(&["stages", "features", "source"]), StageNeed::new(StageKind::Pretrain, "source", why)));
    }
    if stages.select.as_ref().is_some_and(|s| s.plugin.is_some()) {
        let why = "a selector needs propagated labels";
        needs.push((path(&["stages", "select", "plugin"]), StageNeed::new(StageKind::Propagate, "plugin", why)));
    }
    for (key, need) in needs {
        if let Some(message) = need.unmet(stages.plugin(need.stage).map(|s| s.from.is_none())) {
            let location = origins.key_location(&key);
            return Err(ConfigError::new(location, tree::dotted(&key), ConfigErrorKind::MissingStage { message }));
        }
    }
    Ok(())
}

/// The stages that a plugin stage's parameters need ([`PluginParams::needs`](crate::registry::PluginParams::needs))
/// are in the experiment, run by a plugin where they must be; else an error at the key that asks for them.
fn stage_needs(
    slot: Slot,
    stage: &PluginStage,
    stages: &Stages,
    origins: &Origins,
    registry: &Registry,
) -> Result<(), ConfigError> {
    let Some(entry) = stage.plugin.as_deref().and_then(|name| registry.get(slot, name).ok()) else {
        return Ok(());
    };
    for need in (entry.needs)(&Value::Mapping(stage.params.clone())) {
        let present = match need.stage {
            StageKind::Features => stages.has(StageKind::Features).then_some(true),
            kind => stages.plugin(kind).map(|s| s.from.is_none()),
        };
        if let Some(message) = need.unmet(present) {
            let key = [path(&["stages", slot.name()]), need.key.clone()].concat();
            // The key itself, else (a need of a default value) the stage's key.
            let location = origins.key_location(&key);
            return Err(ConfigError::new(location, tree::dotted(&key), ConfigErrorKind::MissingStage { message }));
        }
    }
    Ok(())
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
/// slot, parameters it accepts, and a `resize` of at least 1 only where the stage reads images.
fn plugin_stage(slot: Slot, stage: &PluginStage, origins: &Origins, registry: &Registry) -> Result<(), ConfigError> {
    let base = path(&["stages", slot.stage()]);
    let at = |key: &str| [base.as_slice(), &[key.to_string()]].concat();
    let source_error = |key: &KeyPath, message: String| {
        ConfigError::new(origins.key_location(key), tree::dotted(&base), ConfigErrorKind::StageSource { message })
    };
    if let Some(size) = stage.resize {
        let problem = if slot == Slot::Propagate {
            Some(
                "the propagate stage reads features, not images; give `resize` to a stage that reads images \
                  (pretrain, select, train), or set the size of all of them with `dataset.resize`",
            )
        } else if stage.from.is_some() {
            Some("this stage is read from a file (`from:`), so it sees no images to resize; remove it")
        } else if size == 0 {
            Some("must be at least 1, found 0")
        } else {
            None
        };
        if let Some(message) = problem {
            let key = at("resize");
            return Err(ConfigError::new(
                origins.value_location(&key),
                tree::dotted(&key),
                ConfigErrorKind::Invalid { message: message.into() },
            ));
        }
    }
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
