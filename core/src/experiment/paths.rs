//! Values that are file paths (`dataset.root`, `dataset.seeds`, `stages.*.from`, `plugins.*`, and the parameters a
//! stage's plugin declares in [`PluginParams::PATHS`](crate::registry::PluginParams::PATHS)) are written relative to
//! the file that wrote them, so that inheriting a file from another folder keeps them right; a `--set` path is
//! relative to the working directory. The resolved tree stores them absolute (a leading `~/` is the home directory).

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::load::clean;
use super::origin::Origins;
use super::tree::{self, KeyPath};
use crate::registry::{Registry, Slot};

/// The key paths in `tree` whose values are file paths. A stage whose plugin is unknown contributes only `from`
/// (validation reports the unknown name).
pub(crate) fn path_keys(tree: &Value, registry: &Registry) -> Vec<KeyPath> {
    let key = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<KeyPath>();
    let mut keys = vec![key(&["dataset", "root"]), key(&["dataset", "seeds"])];
    keys.extend(library_keys(tree));
    if let Some(Value::Mapping(stages)) = tree::get(tree, &key(&["stages"])) {
        for (stage, params) in stages {
            let stage = tree::segment(stage);
            keys.push(vec!["stages".into(), stage.clone(), "from".into()]);
            let slot = Slot::from_name(&stage).filter(|s| s.is_slot());
            let plugin = params.get("plugin").and_then(Value::as_str);
            if let Some(entry) = slot.zip(plugin).and_then(|(slot, name)| registry.get(slot, name).ok()) {
                keys.extend(entry.paths.iter().map(|p| vec!["stages".into(), stage.clone(), p.to_string()]));
            }
        }
    }
    keys
}

/// The key paths of the `plugins:` list's items.
pub(crate) fn library_keys(tree: &Value) -> Vec<KeyPath> {
    match tree::get(tree, &["plugins".to_string()]) {
        Some(Value::Sequence(items)) => (0..items.len()).map(|i| vec!["plugins".into(), i.to_string()]).collect(),
        _ => Vec::new(),
    }
}

/// Rewrites every relative path value as an absolute one, relative to the directory of whoever wrote it.
pub(crate) fn absolutize(tree: &mut Value, origins: &Origins, registry: &Registry) {
    absolutize_keys(tree, origins, path_keys(tree, registry));
}

/// Rewrites the relative path values at `keys` as absolute ones.
pub(crate) fn absolutize_keys(tree: &mut Value, origins: &Origins, keys: Vec<KeyPath>) {
    for key in keys {
        let Some(Value::String(text)) = tree::get(tree, &key) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let absolute = resolve(text, &origins.base_dir(&key));
        tree::set(tree, &key, Value::String(absolute.to_string_lossy().into_owned())).expect("the path exists");
    }
}

fn resolve(text: &str, base: &Path) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    let path = match text.strip_prefix("~/").zip(home()) {
        Some((rest, home)) => home.join(rest),
        None => PathBuf::from(text),
    };
    clean(&base.join(path))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::experiment::origin::{Source, Written};

    #[test]
    fn relative_to_the_writer() {
        let mut tree: Value =
            serde_yaml::from_str("dataset: {root: ../data, seeds: /abs/s.npy}\nstages: {select: {from: s.npz}}")
                .unwrap();
        let mut origins = Origins::default();
        let at = |f: &str| Written { source: Source::File(Arc::from(Path::new(f))), key: None, value: None };
        origins.insert(vec!["dataset".into()], at("/e/base/b.yaml"));
        origins.insert(vec!["stages".into()], at("/e/x.yaml"));
        absolutize(&mut tree, &origins, &Registry::default());
        let expected: Value =
            serde_yaml::from_str("dataset: {root: /e/data, seeds: /abs/s.npy}\nstages: {select: {from: /e/s.npz}}")
                .unwrap();
        assert_eq!(tree, expected);
    }

    /// A propagator with one path parameter, `table`.
    mod with_a_path {
        use serde::{Deserialize, Serialize};

        use crate::artifact::{Features, LabeledSet, Propagation};
        use crate::component::{Propagator, StageContext};
        use crate::registry::{ParamError, PluginInfo, PluginParams};

        #[derive(Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct TableParams {
            table: String,
            k: usize,
        }

        impl PluginParams for TableParams {
            const PATHS: &'static [&'static str] = &["table"];
            fn help() -> &'static [(&'static str, &'static str)] {
                &[]
            }
        }

        pub struct FromTable;

        impl PluginInfo for FromTable {
            const NAME: &'static str = "from-table";
            const SUMMARY: &'static str = "test plugin with a path parameter";
            type Params = TableParams;
            fn from_params(_: TableParams) -> Result<Self, ParamError> {
                Ok(FromTable)
            }
        }

        impl Propagator for FromTable {
            fn propagate(
                &mut self,
                _: &mut StageContext,
                _: &Features,
                _: &LabeledSet,
                _: usize,
            ) -> crate::Result<Propagation> {
                unreachable!("only its parameters are used")
            }
        }
    }

    #[test]
    fn plugin_path_parameters_are_relative_to_the_writer() {
        let mut registry = Registry::default();
        let entry = crate::registry::PluginEntry::propagate::<with_a_path::FromTable>("1");
        registry.add(entry, crate::registry::Origin::Static { crate_name: "test" }).unwrap();
        let text =
            "stages:\n  propagate: {plugin: from-table, table: t.npy, k: 3}\n  select: {plugin: other, table: t.npy}";
        let mut tree: Value = serde_yaml::from_str(text).unwrap();
        let mut origins = Origins::default();
        let at = |f: &str| Written { source: Source::File(Arc::from(Path::new(f))), key: None, value: None };
        origins.insert(vec!["stages".into()], at("/e/x.yaml"));
        absolutize(&mut tree, &origins, &registry);
        // Only the declared key of the known plugin is a path; an unknown plugin's keys are left alone.
        let text = "stages:\n  propagate: {plugin: from-table, table: /e/t.npy, k: 3}\n  select: {plugin: other, table: t.npy}";
        assert_eq!(tree, serde_yaml::from_str::<Value>(text).unwrap());
    }
}
