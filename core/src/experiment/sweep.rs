//! `sweep:`: a top-level mapping of dotted key path → list of values, expanded to the cartesian product (keys in
//! file order, the first varying slowest). Each point has a label (`seed=1,stages.propagate.k=50`) and a folder name
//! safe on any file system. A swept value keeps the origin of the list item that gave it, so errors point at it.
//! `sweep:` merges through `extends:` like any mapping; an axis set to `~` (or `sweep: ~`) is dropped.

use std::collections::BTreeSet;

use serde_yaml::Value;

use super::error::{ConfigError, ConfigErrorKind};
use super::origin::Origins;
use super::overrides::Override;
use super::tree::{self, KeyPath};

/// One swept key and its values.
#[derive(Debug, Clone)]
struct Axis {
    /// The key as written under `sweep:`.
    key: String,
    path: KeyPath,
    values: Vec<Value>,
}

impl Axis {
    /// How point labels and folder names show value `c`: the value in YAML flow style, except that an axis of whole
    /// stages (`stages.train: [{plugin: supervised, ...}, {plugin: fixmatch, ...}]`) whose values name distinct
    /// plugins shows just the plugin, so a learners sweep's folders read `stages.train=fixmatch`.
    fn value_label(&self, c: usize) -> String {
        let plugin = |v: &Value| v.get("plugin").and_then(Value::as_str).map(str::to_string);
        let plugins: Option<BTreeSet<String>> = self.values.iter().map(plugin).collect();
        match plugins {
            Some(names) if names.len() == self.values.len() => plugin(&self.values[c]).unwrap_or_default(),
            _ => tree::flow(&self.values[c]),
        }
    }
}

/// The sweep of an experiment; no axes means one point.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sweep {
    axes: Vec<Axis>,
}

/// One grid point: the index of the chosen value on each axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Point {
    choice: Vec<usize>,
    /// `seed=1,stages.propagate.k=50`; empty without a sweep.
    pub label: String,
    /// The label made safe as one folder name; empty without a sweep.
    pub folder: String,
}

/// Longest folder name kept as is; longer ones are cut and end with a hash of the whole label.
const MAX_FOLDER: usize = 120;

impl Sweep {
    /// Removes `sweep:` from the tree and reads it.
    pub fn take(tree: &mut Value, origins: &Origins) -> Result<Sweep, ConfigError> {
        let bad = |path: KeyPath, message: String| {
            ConfigError::new(origins.key_location(&path), tree::dotted(&path), ConfigErrorKind::BadSweep { message })
        };
        let map = match tree::take_top(tree, "sweep") {
            None | Some(Value::Null) => return Ok(Sweep::default()),
            Some(Value::Mapping(map)) => map,
            Some(other) => {
                return Err(bad(
                    vec!["sweep".into()],
                    format!(
                        "expected a mapping of key paths to lists of values (e.g. `stages.propagate.k: [50, 200]`), found {}",
                        tree::describe(&other)
                    ),
                ));
            }
        };
        let mut axes = Vec::new();
        for (key, values) in map {
            let key = tree::segment(&key);
            let at = vec!["sweep".to_string(), key.clone()];
            let path: KeyPath = key.split('.').map(str::to_string).collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(bad(at, format!("`{key}` is not a key path (`a.b.c`)")));
            }
            if matches!(path[0].as_str(), "sweep" | "extends") {
                return Err(bad(at, format!("`{}` cannot be swept", path[0])));
            }
            let values = match values {
                // `key: ~` in an extending file (or `--set sweep.key=~`) removes an inherited axis.
                Value::Null => continue,
                Value::Sequence(values) if !values.is_empty() => values,
                Value::Sequence(_) => {
                    return Err(bad(at, "the list is empty, which gives no runs".into()));
                }
                other => {
                    return Err(bad(
                        at,
                        format!(
                            "expected a list of values, found {}; write `[{}]` for a single value",
                            tree::describe(&other),
                            tree::flow(&other)
                        ),
                    ));
                }
            };
            axes.push(Axis { key, path, values });
        }
        Ok(Sweep { axes })
    }

    /// A `--set` of a swept key (or of a mapping above it) fixes that key: its axis goes, so the command line wins
    /// and no two points are the same run.
    pub fn drop_axes_set_by(&mut self, overrides: &[Override]) {
        self.axes.retain(|axis| !overrides.iter().any(|o| !o.is_sweep() && axis.path.starts_with(&o.path)));
    }

    /// Every grid point, the first axis varying slowest.
    pub fn points(&self) -> Vec<Point> {
        let count: usize = self.axes.iter().map(|a| a.values.len()).product();
        let mut used = BTreeSet::new();
        (0..count)
            .map(|mut n| {
                let mut choice = vec![0; self.axes.len()];
                for (i, axis) in self.axes.iter().enumerate().rev() {
                    choice[i] = n % axis.values.len();
                    n /= axis.values.len();
                }
                let label = self
                    .axes
                    .iter()
                    .zip(&choice)
                    .map(|(axis, &c)| format!("{}={}", axis.key, axis.value_label(c)))
                    .collect::<Vec<_>>()
                    .join(",");
                let base = folder_name(&label);
                let mut folder = base.clone();
                let mut n = 1;
                while !used.insert(folder.clone()) {
                    n += 1;
                    folder = format!("{base}-{n}");
                }
                Point { choice, label, folder }
            })
            .collect()
    }

    /// Writes the point's values into the tree, with the origins of the list items that gave them.
    pub fn apply(&self, point: &Point, tree: &mut Value, origins: &mut Origins) -> Result<(), ConfigError> {
        for (axis, &c) in self.axes.iter().zip(&point.choice) {
            let key_at = vec!["sweep".to_string(), axis.key.clone()];
            let created: Vec<KeyPath> = (1..axis.path.len())
                .map(|n| axis.path[..n].to_vec())
                .filter(|p| tree::get(tree, p).is_none())
                .collect();
            tree::set(tree, &axis.path, axis.values[c].clone()).map_err(|message| {
                ConfigError::new(
                    origins.key_location(&key_at),
                    tree::dotted(&key_at),
                    ConfigErrorKind::BadSweep { message: format!("cannot set `{}`: {message}", axis.key) },
                )
            })?;
            // Point unknown-key errors at the sweep's key, wrong values at the list item.
            // Mappings the sweep created are reported at the sweep's key too.
            let key_written = origins.get(&key_at).cloned();
            if let Some(written) = &key_written {
                for path in created {
                    origins.insert(path, written.clone());
                }
            }
            origins.graft(&[key_at.as_slice(), &[c.to_string()]].concat(), &axis.path);
            if let (Some(key_written), Some(value_written)) = (key_written, origins.get(&axis.path).cloned()) {
                let mut written = value_written;
                if written.source == key_written.source {
                    written.key = key_written.key;
                }
                origins.insert(axis.path.clone(), written);
            }
        }
        Ok(())
    }
}

/// The label as one folder name: characters outside `[A-Za-z0-9._+=,-]` become `_`; long labels are cut and end
/// with a hash of the whole label so that names stay distinct.
fn folder_name(label: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._+=,-".contains(c);
    let mut name: String = label.chars().map(|c| if safe(c) { c } else { '_' }).collect();
    if name.starts_with(['.', '-']) {
        name.insert(0, '_');
    }
    if name.len() > MAX_FOLDER {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(label.as_bytes());
        let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
        name.truncate(MAX_FOLDER - 9);
        name = format!("{name}-{hex}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::overrides;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn cartesian_product_in_file_order() {
        let mut tree = yaml(
            "seed: 1\nsweep:\n  seed: [1, 2, 3]\n  stages.propagate.k: [50, 200]\n  stages.train.plugin: [pseudo-label, remixmatch]\n",
        );
        let sweep = Sweep::take(&mut tree, &Origins::default()).unwrap();
        assert_eq!(tree, yaml("seed: 1"));
        let points = sweep.points();
        assert_eq!(points.len(), 12);
        assert_eq!(points[0].label, "seed=1,stages.propagate.k=50,stages.train.plugin=pseudo-label");
        assert_eq!(points[1].label, "seed=1,stages.propagate.k=50,stages.train.plugin=remixmatch");
        assert_eq!(points[2].label, "seed=1,stages.propagate.k=200,stages.train.plugin=pseudo-label");
        assert_eq!(points[11].label, "seed=3,stages.propagate.k=200,stages.train.plugin=remixmatch");
        assert_eq!(points[11].folder, points[11].label);
        let mut t = tree.clone();
        sweep.apply(&points[7], &mut t, &mut Origins::default()).unwrap();
        assert_eq!(t, yaml("seed: 2\nstages: {propagate: {k: 200}, train: {plugin: remixmatch}}"));
    }

    #[test]
    fn whole_stages_are_labelled_by_their_plugin_when_that_tells_them_apart() {
        let labels = |s: &str| {
            let sweep = Sweep::take(&mut yaml(s), &Origins::default()).unwrap();
            sweep.points().into_iter().map(|p| p.label).collect::<Vec<_>>()
        };
        assert_eq!(
            labels("sweep:\n  stages.train: [{plugin: supervised, epochs: 3}, {plugin: fixmatch, mu: 7}]\n"),
            ["stages.train=supervised", "stages.train=fixmatch"]
        );
        // Two values with the same plugin: only the full value tells them apart.
        assert_eq!(
            labels("sweep:\n  stages.train: [{plugin: fixmatch, mu: 3}, {plugin: fixmatch, mu: 7}]\n"),
            ["stages.train={plugin:fixmatch,mu:3}", "stages.train={plugin:fixmatch,mu:7}"]
        );
    }

    #[test]
    fn no_sweep_is_one_unlabelled_point() {
        let mut tree = yaml("seed: 1");
        let points = Sweep::take(&mut tree, &Origins::default()).unwrap().points();
        assert_eq!(points.len(), 1);
        assert_eq!((points[0].label.as_str(), points[0].folder.as_str()), ("", ""));
    }

    #[test]
    fn folder_names_are_safe_and_distinct() {
        let mut tree = yaml("sweep:\n  dataset.root: ['a/b', 'a b', 'a:b']\n  x: [[1, 2]]\n");
        let points = Sweep::take(&mut tree, &Origins::default()).unwrap().points();
        assert_eq!(points[0].label, "dataset.root=a/b,x=[1,2]");
        assert_eq!(points[0].folder, "dataset.root=a_b,x=_1,2_");
        assert_ne!(points[1].folder, points[0].folder);
        assert_ne!(points[2].folder, points[0].folder);
        assert_eq!(folder_name(&"x".repeat(500)).len(), MAX_FOLDER);
    }

    #[test]
    fn bad_sweeps() {
        let err = |s: &str| Sweep::take(&mut yaml(s), &Origins::default()).unwrap_err().to_string();
        assert_eq!(
            err("sweep: {seed: 3}"),
            "sweep.seed: bad sweep: expected a list of values, found an integer `3`; write `[3]` for a single value"
        );
        assert!(err("sweep: [1]").contains("expected a mapping of key paths"));
        assert!(err("sweep: {a..b: [1]}").contains("is not a key path"));
        assert!(err("sweep: {seed: []}").contains("empty"));
        let sweep = Sweep::take(&mut yaml("sweep: {seed.x: [1]}"), &Origins::default()).unwrap();
        let e = sweep.apply(&sweep.points()[0], &mut yaml("seed: 1"), &mut Origins::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sweep.seed.x: bad sweep: cannot set `seed.x`: `seed` is an integer `1`, not a mapping"
        );
    }

    #[test]
    fn set_fixes_a_swept_key() {
        let mut sweep =
            Sweep::take(&mut yaml("sweep: {seed: [1, 2], stages.propagate.k: [1, 2]}"), &Origins::default()).unwrap();
        sweep.drop_axes_set_by(&[overrides::parse("seed=5").unwrap(), overrides::parse("sweep.x=[1]").unwrap()]);
        assert_eq!(sweep.points().len(), 2);
        sweep.drop_axes_set_by(&[overrides::parse("stages.propagate={from: x}").unwrap()]);
        assert_eq!(sweep.points().len(), 1);
        let sweep = Sweep::take(&mut yaml("sweep: {seed: ~, k: [1, 2]}"), &Origins::default()).unwrap();
        assert_eq!(sweep.points().len(), 2);
    }
}
