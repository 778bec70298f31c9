//! `--set a.b.c=value` overrides from the command line. The value is YAML (`k=50` is an integer, `plugin=foo` a
//! string, `x=[1,2]` a list, `x=~` null); missing intermediate mappings are created. `sweep.<key path>=[...]`
//! addresses one sweep entry, whose key is itself a dotted path.

use std::sync::Arc;

use serde_yaml::Value;

use super::error::{ConfigError, ConfigErrorKind, Location};
use super::origin::{Origins, Written};
use super::tree::{self, KeyPath};

/// One parsed `--set`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Override {
    /// The argument as given, for messages.
    pub text: Arc<str>,
    pub path: KeyPath,
    pub value: Value,
}

impl Override {
    /// Whether it changes the sweep rather than the experiment.
    pub fn is_sweep(&self) -> bool {
        self.path.first().is_some_and(|s| s == "sweep")
    }

    fn error(&self, path: &str, message: String) -> ConfigError {
        ConfigError::new(Location::Set { text: self.text.to_string() }, path, ConfigErrorKind::BadOverride { message })
    }
}

/// `stages.propagate.k=50` → path and YAML value.
pub(crate) fn parse(text: &str) -> Result<Override, ConfigError> {
    let bad = |message: String| {
        ConfigError::new(Location::Set { text: text.to_string() }, "", ConfigErrorKind::BadOverride { message })
    };
    let example = "expected `key.path=value`, e.g. `stages.propagate.k=50`";
    let Some((key, value)) = text.split_once('=') else {
        return Err(bad(format!("no `=`; {example}")));
    };
    let key = key.trim();
    let segments: Vec<&str> = key.split('.').map(str::trim).collect();
    if key.is_empty() || segments.iter().any(|s| s.is_empty()) {
        return Err(bad(format!("`{key}` is not a key path; {example}")));
    }
    let path = match segments.as_slice() {
        ["sweep", rest @ ..] if !rest.is_empty() => vec!["sweep".to_string(), rest.join(".")],
        _ => segments.iter().map(|s| s.to_string()).collect(),
    };
    let value = serde_yaml::from_str::<Value>(value).map_err(|e| {
        let message = e.to_string();
        bad(format!("the value `{value}` is not valid YAML ({message}); quote it to pass it as text"))
    })?;
    Ok(Override { text: Arc::from(text), path, value })
}

/// Writes the override into the tree; its values now report `--set ...` as their origin.
pub(crate) fn apply(tree: &mut Value, origins: &mut Origins, o: &Override) -> Result<(), ConfigError> {
    let created: Vec<KeyPath> =
        (1..o.path.len()).map(|n| o.path[..n].to_vec()).filter(|p| tree::get(tree, p).is_none()).collect();
    tree::set(tree, &o.path, o.value.clone()).map_err(|message| o.error(&tree::dotted(&o.path), message))?;
    origins.replace_under(&o.path, Written::set(&o.text));
    for path in created {
        origins.insert(path, Written::set(&o.text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn values_are_typed_yaml() {
        assert_eq!(parse("stages.propagate.k=50").unwrap().value, Value::from(50));
        assert_eq!(parse("stages.train.plugin=foo").unwrap().value, Value::from("foo"));
        assert_eq!(parse("x=[1,2]").unwrap().value, yaml("[1, 2]"));
        assert_eq!(parse("x=~").unwrap().value, Value::Null);
        assert_eq!(parse("x=0.5").unwrap().value, yaml("0.5"));
        assert_eq!(parse("name='007'").unwrap().value, Value::from("007"));
        let o = parse(" sweep.stages.propagate.k = [1, 2]").unwrap();
        assert_eq!(o.path, ["sweep", "stages.propagate.k"]);
        assert!(o.is_sweep());
    }

    #[test]
    fn bad_syntax_names_the_argument() {
        let e = parse("stages.propagate.k").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--set stages.propagate.k: bad override: no `=`; expected `key.path=value`, e.g. `stages.propagate.k=50`"
        );
        assert!(parse("a..b=1").unwrap_err().to_string().contains("`a..b` is not a key path"));
        assert!(parse("=1").is_err());
        assert!(parse("x=[1, 2").unwrap_err().to_string().starts_with("--set x=[1, 2: bad override: the value"));
    }

    #[test]
    fn creates_intermediate_mappings_and_takes_the_origin() {
        let mut tree = yaml("seed: 1\nstages: {propagate: {plugin: d}}");
        let mut origins = Origins::default();
        for text in ["stages.propagate.k=50", "stages.select.plugin=small-loss", "seed=2"] {
            apply(&mut tree, &mut origins, &parse(text).unwrap()).unwrap();
        }
        assert_eq!(tree, yaml("seed: 2\nstages: {propagate: {plugin: d, k: 50}, select: {plugin: small-loss}}"));
        let path = |s: &str| s.split('.').map(str::to_string).collect::<KeyPath>();
        assert_eq!(
            origins.value_location(&path("stages.select.plugin")).to_string(),
            "--set stages.select.plugin=small-loss"
        );
        assert_eq!(origins.key_location(&path("stages.select")).to_string(), "--set stages.select.plugin=small-loss");
        let e = apply(&mut tree, &mut origins, &parse("seed.x=1").unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "--set seed.x=1: seed.x: bad override: `seed` is an integer `2`, not a mapping");
    }
}
