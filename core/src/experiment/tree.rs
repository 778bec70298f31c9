//! Key paths in a YAML tree: `["stages", "propagate", "k"]`, written `stages.propagate.k`. A segment is a mapping
//! key (non-string keys by their YAML text) or a sequence index.

use serde_yaml::{Mapping, Value};

/// A key path from the top of the tree.
pub(crate) type KeyPath = Vec<String>;

/// `stages.propagate.k`.
pub(crate) fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// The path segment a mapping key stands for.
pub(crate) fn segment(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Null => "~".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => flow(other),
    }
}

/// The value under `path`, if there is one.
pub(crate) fn get<'a>(mut value: &'a Value, path: &[String]) -> Option<&'a Value> {
    for seg in path {
        value = match value {
            Value::Mapping(map) => map.iter().find(|(k, _)| segment(k) == *seg).map(|(_, v)| v)?,
            Value::Sequence(seq) => seq.get(seg.parse::<usize>().ok()?)?,
            Value::Tagged(tagged) => return get(&tagged.value, std::slice::from_ref(seg)),
            _ => return None,
        };
    }
    Some(value)
}

fn child_mut<'a>(map: &'a mut Mapping, seg: &str) -> Option<&'a mut Value> {
    map.iter_mut().find(|(k, _)| segment(k) == seg).map(|(_, v)| v)
}

/// Writes `new` at `path`, creating mappings where keys are missing (or `~`). Fails, saying why, where the path runs
/// through a scalar, or through a sequence with a non-index segment.
pub(crate) fn set(root: &mut Value, path: &[String], new: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        *root = new;
        return Ok(());
    };
    let mut value = root;
    for (depth, seg) in parents.iter().enumerate() {
        value = step_mut(value, seg, &path[..depth])?;
    }
    if value.is_null() {
        *value = Value::Mapping(Mapping::new());
    }
    match value {
        Value::Mapping(map) => {
            match child_mut(map, last) {
                Some(slot) => *slot = new,
                None => {
                    map.insert(Value::String(last.clone()), new);
                }
            }
            Ok(())
        }
        Value::Sequence(seq) => match last.parse::<usize>().ok().and_then(|i| seq.get_mut(i)) {
            Some(slot) => {
                *slot = new;
                Ok(())
            }
            None => Err(not_a_mapping(&path[..path.len() - 1], value)),
        },
        other => Err(not_a_mapping(&path[..path.len() - 1], other)),
    }
}

fn step_mut<'a>(value: &'a mut Value, seg: &str, above: &[String]) -> Result<&'a mut Value, String> {
    if value.is_null() {
        *value = Value::Mapping(Mapping::new());
    }
    match value {
        Value::Mapping(map) => {
            if child_mut(map, seg).is_none() {
                map.insert(Value::String(seg.to_string()), Value::Mapping(Mapping::new()));
            }
            Ok(child_mut(map, seg).expect("just inserted"))
        }
        Value::Sequence(seq) => {
            let len = seq.len();
            match seg.parse::<usize>() {
                Ok(i) if i < len => Ok(&mut seq[i]),
                _ => Err(format!("`{}` is a list of {len}; `{seg}` is not an index into it", dotted(above))),
            }
        }
        other => Err(not_a_mapping(above, other)),
    }
}

fn not_a_mapping(path: &[String], value: &Value) -> String {
    if path.is_empty() {
        format!("the top level is {}, not a mapping", describe(value))
    } else {
        format!("`{}` is {}, not a mapping", dotted(path), describe(value))
    }
}

/// Removes the key `name` from a top-level mapping, returning its value.
pub(crate) fn take_top(root: &mut Value, name: &str) -> Option<Value> {
    match root {
        Value::Mapping(map) => map.remove(name),
        _ => None,
    }
}

/// Deep merge: mappings merge key by key (`over` wins), anything else in `over` replaces what `base` had. A stage
/// whose `plugin:` names another plugin than the base's replaces the base's stage whole: the parameters of one
/// plugin mean nothing to another, and an ablation that swaps a component should not inherit them.
pub(crate) fn merge(base: &mut Value, over: Value) {
    let plugin = |v: &Value| v.as_mapping().and_then(|m| m.get("plugin")).cloned();
    if let (Some(old), Some(new)) = (plugin(base), plugin(&over))
        && old != new
    {
        *base = over;
        return;
    }
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// `a string "x"`, `an integer 3`, `a list`, `a mapping`: the kind of a value, for messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null (~)".to_string(),
        Value::Bool(b) => format!("a boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("a number `{n}`"),
        Value::Number(n) => format!("an integer `{n}`"),
        Value::String(s) => format!("a string `{s}`"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

/// One-line YAML text of a value: `1`, `pseudo-label`, `[1,2]`, `{a:1}`, `~`.
pub(crate) fn flow(value: &Value) -> String {
    match value {
        Value::Null => "~".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(seq) => format!("[{}]", seq.iter().map(flow).collect::<Vec<_>>().join(",")),
        Value::Mapping(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}:{}", segment(k), flow(v))).collect::<Vec<_>>().join(",")
        ),
        Value::Tagged(t) => format!("{} {}", t.tag, flow(&t.value)),
    }
}

/// Every key path in the tree (mapping keys and sequence indices), the root's empty path included.
pub(crate) fn all_paths(value: &Value) -> Vec<KeyPath> {
    fn walk(value: &Value, path: &mut KeyPath, out: &mut Vec<KeyPath>) {
        out.push(path.clone());
        match value {
            Value::Mapping(map) => {
                for (k, v) in map {
                    path.push(segment(k));
                    walk(v, path, out);
                    path.pop();
                }
            }
            Value::Sequence(seq) => {
                for (i, v) in seq.iter().enumerate() {
                    path.push(i.to_string());
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn path(s: &str) -> KeyPath {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn a_stage_with_another_plugin_replaces_the_base_stage() {
        let mut base = yaml("stages: {train: {plugin: pseudo-label, epochs: 3, warmup: {epochs: 2}}}");
        merge(&mut base, yaml("stages: {train: {plugin: supervised, epochs: 9}}"));
        assert_eq!(base, yaml("stages: {train: {plugin: supervised, epochs: 9}}"));
        let mut base = yaml("stages: {train: {plugin: supervised, epochs: 3, batch_size: 5}}");
        merge(&mut base, yaml("stages: {train: {plugin: supervised, epochs: 9}}"));
        assert_eq!(
            base,
            yaml("stages: {train: {plugin: supervised, epochs: 9, batch_size: 5}}"),
            "same plugin: merged"
        );
    }

    #[test]
    fn merge_is_deep_for_mappings_only() {
        let mut base = yaml("a: {x: 1, y: [1, 2]}\nb: 2");
        merge(&mut base, yaml("a: {y: [3], z: 4}\nc: 5"));
        assert_eq!(base, yaml("a: {x: 1, y: [3], z: 4}\nb: 2\nc: 5"));
    }

    #[test]
    fn set_creates_mappings_and_refuses_scalars() {
        let mut v = yaml("a: 1\nb: ~\nl: [{x: 1}]");
        set(&mut v, &path("c.d.e"), Value::from(3)).unwrap();
        set(&mut v, &path("b.x"), Value::from(4)).unwrap();
        set(&mut v, &path("l.0.x"), Value::from(5)).unwrap();
        assert_eq!(v, yaml("a: 1\nb: {x: 4}\nl: [{x: 5}]\nc: {d: {e: 3}}"));
        assert_eq!(set(&mut v, &path("a.b"), Value::Null).unwrap_err(), "`a` is an integer `1`, not a mapping");
        assert!(set(&mut v, &path("l.x.y"), Value::Null).is_err());
    }

    #[test]
    fn flow_text() {
        assert_eq!(flow(&yaml("[1, b, {c: ~}]")), "[1,b,{c:~}]");
        assert_eq!(get(&yaml("a: [1, {b: 2}]"), &path("a.1.b")), Some(&Value::from(2)));
    }
}
