//! Values that are file paths (`dataset.root`, `dataset.seeds`, `stages.*.from`) are written relative to the file
//! that wrote them, so that inheriting a file from another folder keeps them right; a `--set` path is relative to
//! the working directory. The resolved tree stores them absolute (a leading `~/` is the home directory).

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::load::clean;
use super::origin::Origins;
use super::tree::{self, KeyPath};

/// The key paths in `tree` whose values are file paths.
pub(crate) fn path_keys(tree: &Value) -> Vec<KeyPath> {
    let key = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<KeyPath>();
    let mut keys = vec![key(&["dataset", "root"]), key(&["dataset", "seeds"])];
    if let Some(Value::Mapping(stages)) = tree::get(tree, &key(&["stages"])) {
        keys.extend(stages.keys().map(|stage| vec!["stages".into(), tree::segment(stage), "from".into()]));
    }
    keys
}

/// Rewrites every relative path value as an absolute one, relative to the directory of whoever wrote it.
pub(crate) fn absolutize(tree: &mut Value, origins: &Origins) {
    for key in path_keys(tree) {
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
        absolutize(&mut tree, &origins);
        let expected: Value =
            serde_yaml::from_str("dataset: {root: /e/data, seeds: /abs/s.npy}\nstages: {select: {from: /e/s.npz}}")
                .unwrap();
        assert_eq!(tree, expected);
    }
}
