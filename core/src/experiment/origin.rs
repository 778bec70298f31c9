//! Where every value of a resolved tree was written: the file, line and column of its key and of its value, or the
//! `--set` text that introduced it. Kept beside the `serde_yaml::Value` tree as a map from key path to origin, and
//! carried through `extends:` merges, overrides and sweeps so that errors point at the text that wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::Value;

use super::error::Location;
use super::tree::{KeyPath, all_paths};

/// Who wrote a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// An experiment file, by the path shown in messages (relative to the working directory, as given).
    File(Arc<Path>),
    /// A command-line override, by its text `a.b=c`.
    Set(Arc<str>),
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where one key and its value were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub source: Source,
    /// The key (`kk:`); absent for the top of a document, sequence items and `--set` values.
    pub key: Option<Pos>,
    /// The value (`3`); for a block mapping or sequence, its first entry.
    pub value: Option<Pos>,
}

impl Written {
    pub fn set(text: &Arc<str>) -> Self {
        Written { source: Source::Set(text.clone()), key: None, value: None }
    }

    fn location(&self, pos: Option<Pos>) -> Location {
        match (&self.source, pos) {
            (Source::File(file), Some(Pos { line, column })) => {
                Location::File { file: file.to_path_buf(), line, column }
            }
            (Source::File(file), None) => Location::Whole { file: file.to_path_buf() },
            (Source::Set(text), _) => Location::Set { text: text.to_string() },
        }
    }
}

/// Origins by key path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    map: BTreeMap<KeyPath, Written>,
}

impl Origins {
    pub fn insert(&mut self, path: KeyPath, written: Written) {
        self.map.insert(path, written);
    }

    pub fn get(&self, path: &[String]) -> Option<&Written> {
        self.map.get(path)
    }

    /// Forgets `path` and everything under it.
    pub fn remove_under(&mut self, path: &[String]) {
        self.map.retain(|p, _| !p.starts_with(path));
    }

    /// `path` and everything under it now come from `written` (a `--set`).
    pub fn replace_under(&mut self, path: &[String], written: Written) {
        self.remove_under(path);
        self.map.insert(path.to_vec(), written);
    }

    /// The origins of `over` win over these; call [`Origins::prune`] with the merged tree afterwards.
    pub fn overlay(&mut self, over: Origins) {
        self.map.extend(over.map);
    }

    /// Drops origins of paths that are no longer in `tree` (replaced by a merge, removed like `extends`).
    pub fn prune(&mut self, tree: &Value) {
        let live: std::collections::BTreeSet<KeyPath> = all_paths(tree).into_iter().collect();
        self.map.retain(|p, _| live.contains(p));
    }

    /// Copies the origins under `from` to the same relative paths under `to` (a sweep value to the key it sets),
    /// after forgetting what was under `to`.
    pub fn graft(&mut self, from: &[String], to: &[String]) {
        let moved: Vec<(KeyPath, Written)> = self
            .map
            .range(from.to_vec()..)
            .take_while(|(p, _)| p.starts_with(from))
            .map(|(p, w)| ([to, &p[from.len()..]].concat(), w.clone()))
            .collect();
        self.remove_under(to);
        self.map.extend(moved);
    }

    /// The origin of `path` or of its nearest ancestor that has one, with that ancestor's path.
    fn nearest<'a>(&self, path: &'a [String]) -> Option<(&'a [String], &Written)> {
        (0..=path.len()).rev().find_map(|n| self.map.get(&path[..n]).map(|w| (&path[..n], w)))
    }

    /// Who wrote `path` (or the nearest ancestor that was written).
    pub fn source(&self, path: &[String]) -> Option<&Source> {
        self.nearest(path).map(|(_, w)| &w.source)
    }

    /// Where to point for an error about the key at `path` (an unknown key): the key itself, else the nearest
    /// ancestor's key; a path only the top of a document holds points at the file as a whole.
    pub fn key_location(&self, path: &[String]) -> Location {
        match self.nearest(path) {
            Some(([], w)) => w.location(None),
            Some((_, w)) => w.location(w.key.or(w.value)),
            None => Location::Unknown,
        }
    }

    /// Where to point for an error about the value at `path` (a wrong type): the value itself, else as
    /// [`Origins::key_location`].
    pub fn value_location(&self, path: &[String]) -> Location {
        match self.map.get(path) {
            Some(w) => w.location(w.value.or(w.key)),
            None => self.key_location(path),
        }
    }

    /// The directory a relative path written at `path` is relative to: its file's, or the working directory for a
    /// `--set` (or an unknown origin).
    pub fn base_dir(&self, path: &[String]) -> PathBuf {
        let cwd = || std::env::current_dir().unwrap_or_default();
        match self.source(path) {
            Some(Source::File(file)) => match file.parent() {
                Some(dir) if dir.is_absolute() => dir.to_path_buf(),
                Some(dir) => cwd().join(dir),
                None => cwd(),
            },
            _ => cwd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> KeyPath {
        if s.is_empty() { Vec::new() } else { s.split('.').map(str::to_string).collect() }
    }

    fn at(file: &str, line: usize) -> Written {
        Written {
            source: Source::File(Arc::from(Path::new(file))),
            key: Some(Pos { line, column: 1 }),
            value: Some(Pos { line, column: 4 }),
        }
    }

    #[test]
    fn nearest_ancestor_and_whole_file() {
        let mut o = Origins::default();
        o.insert(p(""), at("x.yaml", 1));
        o.insert(p("a"), at("x.yaml", 2));
        assert_eq!(o.key_location(&p("a.b")).to_string(), "x.yaml:2:1");
        assert_eq!(o.value_location(&p("a")).to_string(), "x.yaml:2:4");
        assert_eq!(o.key_location(&p("zz")).to_string(), "x.yaml");
    }

    #[test]
    fn graft_moves_origins() {
        let mut o = Origins::default();
        o.insert(p("sweep.k.1"), at("x.yaml", 5));
        o.insert(p("sweep.k.1.x"), at("x.yaml", 6));
        o.insert(p("a.k"), at("base.yaml", 9));
        o.insert(p("a.k.old"), at("base.yaml", 10));
        o.graft(&p("sweep.k.1"), &p("a.k"));
        assert_eq!(o.get(&p("a.k")), Some(&at("x.yaml", 5)));
        assert_eq!(o.get(&p("a.k.x")), Some(&at("x.yaml", 6)));
        assert_eq!(o.get(&p("a.k.old")), None);
    }
}
