//! Reading experiment files: YAML text to a `serde_yaml::Value` tree with the origin of every key, and `extends:`
//! inheritance (a path or a list of paths, relative to the file that says it; deep merge of mappings where the
//! extending file wins, sequences and scalars replace; cycles reported with their chain).
//!
//! serde_yaml parses the tree (it is also what turns the tree into the typed [`super::Experiment`]); `yaml-rust2`'s
//! event parser reads the same text once more for the line and column of each key and value, which serde_yaml does
//! not expose. Should the two parsers ever disagree on a file serde_yaml accepts, errors fall back to naming the
//! file without a position rather than failing.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_yaml::{Mapping, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::error::{ConfigError, ConfigErrorKind, Location};
use super::origin::{Origins, Pos, Source, Written};
use super::tree::{self, KeyPath};

/// A tree and where each of its values was written.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub tree: Value,
    pub origins: Origins,
}

/// Reads `path` and everything it extends.
pub(crate) fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let file = clean(path);
    if !file.is_file() {
        return Err(ConfigError::new(Location::Unknown, "", ConfigErrorKind::FileNotFound { path: file }));
    }
    let text = std::fs::read_to_string(&file).map_err(|source| {
        ConfigError::new(Location::Whole { file: file.clone() }, "", ConfigErrorKind::Io { source })
    })?;
    load_text(&text, &file)
}

/// Parses `text` as if read from `file` (which need not exist), resolving `extends:` relative to its directory.
pub(crate) fn load_text(text: &str, file: &Path) -> Result<Loaded, ConfigError> {
    let file = clean(file);
    let mut chain = vec![(identity(&file), file.clone())];
    resolve(text, &file, &mut chain)
}

/// The files being resolved, outermost first: (identity for cycle checks, path for messages).
type Chain = Vec<(PathBuf, PathBuf)>;

fn resolve(text: &str, file: &Path, chain: &mut Chain) -> Result<Loaded, ConfigError> {
    let Loaded { mut tree, mut origins } = parse(text, file)?;
    let mut base: Option<Loaded> = None;
    for (target, at) in extends_targets(tree::take_top(&mut tree, "extends"), &origins)? {
        let location = origins.value_location(&at);
        let error = |kind| ConfigError::new(location.clone(), "extends", kind);
        let target = clean(&file.parent().unwrap_or(Path::new("")).join(target));
        if !target.is_file() {
            return Err(error(ConfigErrorKind::ExtendsNotFound { target, referenced_by: file.to_path_buf() }));
        }
        let id = identity(&target);
        if chain.iter().any(|(seen, _)| *seen == id) {
            let mut files: Vec<PathBuf> = chain.iter().map(|(_, shown)| shown.clone()).collect();
            files.push(target);
            return Err(error(ConfigErrorKind::ExtendsCycle { chain: files }));
        }
        let text = std::fs::read_to_string(&target).map_err(|source| error(ConfigErrorKind::Io { source }))?;
        chain.push((id, target.clone()));
        let parent = resolve(&text, &target, chain)?;
        chain.pop();
        base = Some(match base {
            None => parent,
            Some(earlier) => merge(earlier, parent),
        });
    }
    origins.remove_under(&["extends".to_string()]);
    let own = Loaded { tree, origins };
    Ok(match base {
        None => own,
        Some(base) => merge(base, own),
    })
}

/// `over` merged onto `base`, origins following the values that win.
fn merge(base: Loaded, over: Loaded) -> Loaded {
    let Loaded { mut tree, mut origins } = base;
    tree::merge(&mut tree, over.tree);
    origins.overlay(over.origins);
    origins.prune(&tree);
    Loaded { tree, origins }
}

/// The paths `extends:` names, each with the key path of the text that named it.
fn extends_targets(value: Option<Value>, origins: &Origins) -> Result<Vec<(String, KeyPath)>, ConfigError> {
    let at = |rest: &[&str]| -> KeyPath {
        std::iter::once("extends").chain(rest.iter().copied()).map(str::to_string).collect()
    };
    let wrong = |path: KeyPath, found: &Value| {
        ConfigError::new(
            origins.value_location(&path),
            tree::dotted(&path),
            ConfigErrorKind::WrongType {
                expected: "a file path or a list of file paths".into(),
                found: tree::describe(found),
            },
        )
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![(s, at(&[]))]),
        Some(Value::Sequence(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok((s, at(&[&i.to_string()]))),
                other => Err(wrong(at(&[&i.to_string()]), &other)),
            })
            .collect(),
        Some(other) => Err(wrong(at(&[]), &other)),
    }
}

/// One file's tree (without resolving `extends:`) and its origins.
fn parse(text: &str, file: &Path) -> Result<Loaded, ConfigError> {
    let mut tree: Value = serde_yaml::from_str(text).map_err(|e| syntax_error(e, file, text))?;
    tree.apply_merge().map_err(|e| syntax_error(e, file, text))?;
    let origins = positions(text, file).0;
    match tree {
        Value::Null => tree = Value::Mapping(Mapping::new()),
        Value::Mapping(_) => {}
        ref other => {
            return Err(ConfigError::new(
                origins.value_location(&[]),
                "",
                ConfigErrorKind::NotAMapping { found: tree::describe(other) },
            ));
        }
    }
    Ok(Loaded { tree, origins })
}

fn syntax_error(e: serde_yaml::Error, file: &Path, text: &str) -> ConfigError {
    let mut message = e.to_string();
    if message.contains("duplicate entry")
        && let (_, Some((path, Pos { line, column }))) = positions(text, file)
    {
        // serde_yaml points at the mapping; point at the second occurrence of the key instead.
        let location = Location::File { file: file.to_path_buf(), line, column };
        let message = "duplicate key (a key may appear once per mapping)".to_string();
        return ConfigError::new(location, tree::dotted(&path), ConfigErrorKind::Syntax { message });
    }
    let location = match e.location() {
        Some(at) => {
            // serde_yaml appends the position it already gives in `location()`.
            message = message.replacen(&format!(" at line {} column {}", at.line(), at.column()), "", 1);
            Location::File { file: file.to_path_buf(), line: at.line(), column: at.column() }
        }
        None => Location::Whole { file: file.to_path_buf() },
    };
    ConfigError::new(location, "", ConfigErrorKind::Syntax { message })
}

/// Line and column of every key and value in `text` (the top of the document is always recorded), and the first
/// key that repeats one before it in the same mapping.
fn positions(text: &str, file: &Path) -> (Origins, Option<(KeyPath, Pos)>) {
    let source = Source::File(Arc::from(file));
    let mut recorder =
        Recorder { source: source.clone(), origins: Origins::default(), stack: Vec::new(), skip: 0, duplicate: None };
    let parsed = Parser::new_from_str(text).load(&mut recorder, false);
    let (mut origins, duplicate) =
        if parsed.is_ok() { (recorder.origins, recorder.duplicate) } else { (Origins::default(), None) };
    if origins.get(&[]).is_none() {
        origins.insert(Vec::new(), Written { source, key: None, value: None });
    }
    (origins, duplicate)
}

enum Frame {
    /// Inside a mapping; `key` is the key read whose value comes next.
    Map {
        path: KeyPath,
        key: Option<(String, Pos)>,
        seen: BTreeSet<String>,
    },
    Seq {
        path: KeyPath,
        next: usize,
    },
}

#[derive(PartialEq)]
enum Node {
    Scalar(String),
    Alias,
    Map,
    Seq,
}

struct Recorder {
    source: Source,
    origins: Origins,
    stack: Vec<Frame>,
    /// Depth inside a complex (mapping or sequence) key, whose contents are not addressable by key path.
    skip: usize,
    duplicate: Option<(KeyPath, Pos)>,
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        // yaml-rust2 counts lines from 1 and columns from 0.
        let pos = Pos { line: mark.line(), column: mark.col() + 1 };
        if self.skip > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.skip += 1,
                Event::MappingEnd | Event::SequenceEnd => self.skip -= 1,
                _ => {}
            }
            return;
        }
        match event {
            Event::Scalar(text, ..) => self.node(Node::Scalar(text), pos),
            Event::Alias(_) => self.node(Node::Alias, pos),
            Event::MappingStart(..) => self.node(Node::Map, pos),
            Event::SequenceStart(..) => self.node(Node::Seq, pos),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Recorder {
    fn node(&mut self, node: Node, pos: Pos) {
        let (path, key) = match self.stack.last_mut() {
            None => (Vec::new(), None),
            Some(Frame::Map { path, key, seen }) => match key.take() {
                Some((name, at)) => ([path.as_slice(), &[name]].concat(), Some(at)),
                None => {
                    // This node is a key.
                    let name = match node {
                        Node::Scalar(text) => text,
                        Node::Alias => "*".to_string(),
                        Node::Map | Node::Seq => {
                            self.skip = 1;
                            "?".to_string()
                        }
                    };
                    if !seen.insert(name.clone()) && self.duplicate.is_none() {
                        self.duplicate = Some(([path.as_slice(), std::slice::from_ref(&name)].concat(), pos));
                    }
                    *key = Some((name, pos));
                    return;
                }
            },
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                ([path.as_slice(), &[(*next - 1).to_string()]].concat(), None)
            }
        };
        self.origins.insert(path.clone(), Written { source: self.source.clone(), key, value: Some(pos) });
        match node {
            Node::Map => self.stack.push(Frame::Map { path, key: None, seen: BTreeSet::new() }),
            Node::Seq => self.stack.push(Frame::Seq { path, next: 0 }),
            _ => {}
        }
    }
}

/// `a/./b/../c` → `a/c`, lexically (the form shown in messages and used to read files).
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// What makes two paths the same file, for cycle checks.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| clean(&std::path::absolute(path).unwrap_or(path.to_path_buf())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(s: &str) -> KeyPath {
        if s.is_empty() { Vec::new() } else { s.split('.').map(str::to_string).collect() }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn positions_of_keys_and_values() {
        let text = "name: x\nstages:\n  propagate:\n    plugin: diffusion\n    kk: 3\nsweep:\n  seed: [1, 2]\n";
        let loaded = load_text(text, Path::new("exp/x.yaml")).unwrap();
        let o = &loaded.origins;
        assert_eq!(o.key_location(&kp("stages.propagate.kk")).to_string(), "exp/x.yaml:5:5");
        assert_eq!(o.value_location(&kp("stages.propagate.kk")).to_string(), "exp/x.yaml:5:9");
        assert_eq!(o.value_location(&kp("stages.propagate.plugin")).to_string(), "exp/x.yaml:4:13");
        assert_eq!(o.value_location(&kp("sweep.seed.1")).to_string(), "exp/x.yaml:7:13");
        assert_eq!(o.key_location(&kp("name")).to_string(), "exp/x.yaml:1:1");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = load_text("a: 1\nb: [1, 2\nc: 3\n", Path::new("x.yaml")).unwrap_err();
        assert!(matches!(*e.kind, ConfigErrorKind::Syntax { .. }), "{e}");
        let Location::File { line, .. } = e.location else { panic!("{e}") };
        assert!(line >= 2, "{e}");
        assert!(e.to_string().starts_with("x.yaml:3:2: YAML syntax error: did not find expected ',' or ']'"), "{e}");
        let e = load_text("a:\n  b: 1\n  c: 2\n  b: 3\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.yaml:4:3: a.b: YAML syntax error: duplicate key (a key may appear once per mapping)"
        );
        let e = load_text("- 1\n- 2\n", Path::new("x.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("x.yaml:1:1: an experiment file must be a mapping"), "{e}");
    }

    #[test]
    fn extends_two_levels_deep_merge() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "base/root.yaml",
            "seed: 7\ndataset: {name: mnist, root: ../data, labels_per_class: 4}\nstages:\n  propagate: {plugin: diffusion, k: 200, alpha: 0.99}\n  train: {plugin: pl, milestones: [1, 2]}\n",
        );
        write(
            dir.path(),
            "mid/mid.yaml",
            "extends: ../base/root.yaml\ndataset: {labels_per_class: 10}\nstages:\n  propagate: {k: 50}\n  train: {milestones: [9]}\n",
        );
        let top =
            write(dir.path(), "top.yaml", "extends: [mid/mid.yaml]\nname: top\nstages:\n  propagate: {alpha: 0.5}\n");
        let loaded = load_file(&top).unwrap();
        let expected: Value = serde_yaml::from_str(
            "seed: 7\ndataset: {name: mnist, root: ../data, labels_per_class: 10}\nstages:\n  propagate: {plugin: diffusion, k: 50, alpha: 0.5}\n  train: {plugin: pl, milestones: [9]}\nname: top\n",
        )
        .unwrap();
        assert_eq!(loaded.tree, expected);
        let o = &loaded.origins;
        let shown = |p: &str| o.value_location(&kp(p)).to_string();
        assert!(shown("seed").ends_with("base/root.yaml:1:7"), "{}", shown("seed"));
        assert!(shown("stages.propagate.k").ends_with("mid/mid.yaml:4:18"), "{}", shown("stages.propagate.k"));
        assert!(shown("stages.propagate.alpha").ends_with("top.yaml:4:22"), "{}", shown("stages.propagate.alpha"));
        assert!(shown("stages.train.milestones.0").ends_with("mid/mid.yaml:5:24"));
        assert!(o.get(&kp("stages.train.milestones.1")).is_none());
        assert!(o.get(&kp("extends")).is_none());
        // The root path was written by base/root.yaml, so it is relative to base/.
        assert_eq!(o.base_dir(&kp("dataset.root")), std::path::absolute(dir.path().join("base")).unwrap());
    }

    #[test]
    fn extends_cycle_shows_chain() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", "extends: b.yaml\nseed: 1\n");
        write(dir.path(), "b.yaml", "seed: 2\nextends: [a.yaml]\n");
        let e = load_file(&a).unwrap_err();
        let (a, b) = (clean(&a), clean(&dir.path().join("b.yaml")));
        assert_eq!(
            e.to_string(),
            format!("{}:2:11: extends: cycle: {} -> {} -> {}", b.display(), a.display(), b.display(), a.display())
        );
    }

    #[test]
    fn extends_missing_file_names_both() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "exp/a.yaml", "seed: 1\nextends: ../base/nope.yaml\n");
        let e = load_file(&a).unwrap_err();
        let missing = dir.path().join("base/nope.yaml");
        assert_eq!(
            e.to_string(),
            format!(
                "{}:2:10: extends: file `{}` not found (referenced by {})",
                a.display(),
                missing.display(),
                a.display()
            )
        );
        let e = load_text("extends: 3\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.yaml:1:10: extends: wrong type: expected a file path or a list of file paths, found an integer `3`"
        );
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(clean(Path::new("../x/../../y")), PathBuf::from("../../y"));
        assert_eq!(clean(Path::new("/a/../../b")), PathBuf::from("/b"));
    }
}
