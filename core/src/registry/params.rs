use serde::Serialize;
use serde::de::DeserializeOwned;

/// A plugin's typed parameters: serde with `deny_unknown_fields` and every default of the method in `Default`.
pub trait PluginParams: Serialize + DeserializeOwned + Default {
    /// Parameters whose values are file paths. Like `dataset.root`, such a value is written relative to the
    /// experiment file that sets it (a `--set` value: to the working directory) and reaches the plugin absolute.
    const PATHS: &'static [&'static str] = &[];

    /// One line of help per parameter, by field name (`relab plugins describe` prints them beside the defaults).
    fn help() -> &'static [(&'static str, &'static str)];
}

/// A parameter that failed its plugin's checks: where (key path inside the stage), what went wrong, and the keys
/// the plugin knows (for "did you mean").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// Key path inside the stage's mapping, e.g. `["k"]`; empty when the error concerns the whole mapping.
    pub path: Vec<String>,
    pub message: String,
    pub known_keys: Vec<String>,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path.join("."), self.message)
        }
    }
}

impl std::error::Error for ParamError {}

/// Parameters as the plugin's struct, reporting the key path of the first offending value.
pub fn parse_params<P: PluginParams>(value: &serde_yaml::Value) -> Result<P, ParamError> {
    let known_keys = || describe_params::<P>().into_iter().map(|d| d.name).collect::<Vec<_>>();
    let value = match value {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        v => v.clone(),
    };
    serde_path_to_error::deserialize::<_, P>(value).map_err(|e| {
        let path = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect::<Vec<_>>();
        let message = e.into_inner().to_string();
        // serde names an unknown field in its message, not in the path: put it on the path so positions resolve.
        let path = match unknown_field(&message) {
            Some(field) if path.is_empty() => vec![field],
            _ => path,
        };
        ParamError { path, message, known_keys: known_keys() }
    })
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// One parameter: its name, its default written as YAML, and its help line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDoc {
    pub name: String,
    pub default: String,
    pub help: String,
}

/// The parameters of `P`, in declaration order, with their defaults.
pub fn describe_params<P: PluginParams>() -> Vec<ParamDoc> {
    let defaults = serde_yaml::to_value(P::default()).unwrap_or(serde_yaml::Value::Null);
    let help = P::help();
    let serde_yaml::Value::Mapping(map) = defaults else { return Vec::new() };
    map.into_iter()
        .filter_map(|(k, v)| {
            let name = k.as_str()?.to_string();
            let default = match v {
                serde_yaml::Value::Null => "~".to_string(),
                v => serde_yaml::to_string(&shortest_floats(v)).unwrap_or_default().trim_end().to_string(),
            };
            let help = help.iter().find(|(n, _)| *n == name).map(|(_, h)| h.to_string()).unwrap_or_default();
            Some(ParamDoc { name, default, help })
        })
        .collect()
}

/// `value` with every number that is exactly an `f32` written as that `f32`'s shortest decimal: an `f32` field
/// reaches YAML as the `f64` of its bits (0.08 as 0.07999999821186066), which is not what its author wrote.
fn shortest_floats(value: serde_yaml::Value) -> serde_yaml::Value {
    use serde_yaml::Value;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(x) if !n.is_i64() && !n.is_u64() && x.is_finite() && (x as f32) as f64 == x => {
                Value::from((x as f32).to_string().parse::<f64>().unwrap_or(x))
            }
            _ => Value::Number(n),
        },
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(shortest_floats).collect()),
        Value::Mapping(map) => Value::Mapping(map.into_iter().map(|(k, v)| (k, shortest_floats(v))).collect()),
        Value::Tagged(t) => {
            let t = *t;
            Value::Tagged(Box::new(serde_yaml::value::TaggedValue { tag: t.tag, value: shortest_floats(t.value) }))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    #[serde(default)]
    struct Mixed {
        single: f32,
        pair: [f32; 2],
        double: f64,
        count: u32,
    }

    impl Default for Mixed {
        fn default() -> Self {
            Mixed { single: 0.1, pair: [0.08, 4.0 / 3.0], double: 0.1, count: 7 }
        }
    }

    impl PluginParams for Mixed {
        fn help() -> &'static [(&'static str, &'static str)] {
            &[("single", "an f32")]
        }
    }

    #[test]
    fn defaults_show_f32_values_as_written() {
        let docs = describe_params::<Mixed>();
        let shown: Vec<(&str, &str)> = docs.iter().map(|d| (d.name.as_str(), d.default.as_str())).collect();
        assert_eq!(shown, vec![("single", "0.1"), ("pair", "- 0.08\n- 1.3333334"), ("double", "0.1"), ("count", "7")]);
        assert_eq!(docs[0].help, "an f32");
    }
}
