use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::component::StageKind;

/// A plugin's typed parameters: serde with `deny_unknown_fields` and every default of the method in `Default`.
pub trait PluginParams: Serialize + DeserializeOwned + Default {
    /// Parameters whose values are file paths. Like `dataset.root`, such a value is written relative to the
    /// experiment file that sets it (a `--set` value: to the working directory) and reaches the plugin absolute.
    const PATHS: &'static [&'static str] = &[];

    /// One line of help per parameter, by field name (`relab plugins describe` prints them beside the defaults).
    fn help() -> &'static [(&'static str, &'static str)];

    /// The other stages these parameters need, e.g. `init: pretrain` needs the pretrain stage's encoder. `relab
    /// validate` (and `relab run`, before any stage runs) refuses an experiment that lacks one, pointing at the key
    /// that asks for it. None by default.
    fn needs(&self) -> Vec<StageNeed> {
        Vec::new()
    }

    /// The checks of single values (`min = 1`, ...) that [`crate::params`] declares; [`parse_params`] runs them.
    fn check_ranges(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// The bounds a value must keep: `min ≤ x ≤ max`, `above < x < below` (each optional).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub above: Option<f64>,
    pub below: Option<f64>,
}

impl Range {
    fn holds(&self, x: f64) -> bool {
        self.min.is_none_or(|m| x >= m)
            && self.max.is_none_or(|m| x <= m)
            && self.above.is_none_or(|m| x > m)
            && self.below.is_none_or(|m| x < m)
    }

    /// `at least 1`, `a positive number`, `a finite number ≥ 0 and < 1`.
    fn describe(&self, float: bool) -> String {
        if float && *self == (Range { above: Some(0.0), ..Range::default() }) {
            return "a positive number".into();
        }
        let mut parts = Vec::new();
        for (bound, word, sign) in [
            (self.min, "at least", "≥"),
            (self.above, "greater than", ">"),
            (self.max, "at most", "≤"),
            (self.below, "less than", "<"),
        ] {
            if let Some(b) = bound {
                parts.push(if float { format!("{sign} {b}") } else { format!("{word} {b}") });
            }
        }
        if float { format!("a finite number {}", parts.join(" and ")) } else { parts.join(" and ") }
    }
}

/// Values a [`Range`] applies to: numbers, and each item of an `Option`, `Vec` or array of them.
pub trait RangeValue {
    /// Each number in the value, with its text as written; `float` says whether it is a float.
    fn each(&self, f: &mut dyn FnMut(f64, String, bool));
}

macro_rules! range_value {
    ($float:literal: $($t:ty),*) => {$(
        impl RangeValue for $t {
            fn each(&self, f: &mut dyn FnMut(f64, String, bool)) {
                f(*self as f64, self.to_string(), $float)
            }
        }
    )*};
}
range_value!(false: u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
range_value!(true: f32, f64);

impl<T: RangeValue> RangeValue for Option<T> {
    fn each(&self, f: &mut dyn FnMut(f64, String, bool)) {
        if let Some(v) = self {
            v.each(f)
        }
    }
}

impl<T: RangeValue> RangeValue for Vec<T> {
    fn each(&self, f: &mut dyn FnMut(f64, String, bool)) {
        self.iter().for_each(|v| v.each(f))
    }
}

impl<T: RangeValue, const N: usize> RangeValue for [T; N] {
    fn each(&self, f: &mut dyn FnMut(f64, String, bool)) {
        self.iter().for_each(|v| v.each(f))
    }
}

/// The range check [`crate::params`] generates: an error naming `key` when a number in `value` is outside `range`
/// (a NaN always is).
pub fn check_range(key: &str, value: &impl RangeValue, range: Range) -> Result<(), ParamError> {
    let mut bad = None;
    value.each(&mut |x, text, float| {
        if bad.is_none() && !(range.holds(x) && x.is_finite()) {
            bad = Some(format!("must be {}, found {text}", range.describe(float)));
        }
    });
    match bad {
        None => Ok(()),
        Some(message) => Err(ParamError { path: vec![key.to_string()], message, known_keys: Vec::new() }),
    }
}

/// Another stage that a plugin's parameters need ([`PluginParams::needs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageNeed {
    /// The stage needed.
    pub stage: StageKind,
    /// Key path, inside the plugin's own stage, of the parameter that asks for it (`["init"]`).
    pub key: Vec<String>,
    /// What needs it, as the start of a sentence: `init: pretrain needs the pretrain stage's encoder`.
    pub why: String,
    /// The stage must be run by a plugin: one read from a file (`from:`) does not do.
    pub run_by_plugin: bool,
}

impl StageNeed {
    /// `key` (dotted, inside the plugin's stage) needs `stage`, for the reason `why`.
    pub fn new(stage: StageKind, key: &str, why: impl Into<String>) -> Self {
        StageNeed { stage, key: key.split('.').map(str::to_string).collect(), why: why.into(), run_by_plugin: false }
    }

    /// The stage must be run by a plugin, not read from a file with `from:`.
    pub fn run_by_plugin(mut self) -> Self {
        self.run_by_plugin = true;
        self
    }

    /// Why an experiment whose `stage` is `present` (absent: `None`; read from a file: `Some(false)`; run by a
    /// plugin: `Some(true)`) does not meet this need, or `None` when it does.
    pub fn unmet(&self, present: Option<bool>) -> Option<String> {
        let stage = self.stage.name();
        match present {
            None => Some(format!("{}, but this experiment has no {stage} stage (stages.{stage})", self.why)),
            Some(false) if self.run_by_plugin => Some(format!(
                "{}, but stages.{stage} is read from a file (`from:`); name a plugin for it instead",
                self.why
            )),
            Some(_) => None,
        }
    }
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

impl ParamError {
    /// The same error, for the parameter under `key` (a nested struct's error, seen from its parent).
    pub fn under(mut self, key: &str) -> Self {
        self.path.insert(0, key.to_string());
        self
    }
}

/// Parameters as the plugin's struct, reporting the key path of the first offending value.
pub fn parse_params<P: PluginParams>(value: &serde_yaml::Value) -> Result<P, ParamError> {
    let known_keys = || describe_params::<P>().into_iter().map(|d| d.name).collect::<Vec<_>>();
    let value = match value {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        v => v.clone(),
    };
    let params = serde_path_to_error::deserialize::<_, P>(value).map_err(|e| {
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
    })?;
    params.check_ranges().map_err(|e| ParamError { known_keys: known_keys(), ..e })?;
    Ok(params)
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

    /// What the lib.rs documentation of `params` promises.
    #[crate::params]
    #[derive(Debug, Clone, PartialEq)]
    struct MyParams {
        /// neighbours of each node
        ///
        /// Later paragraphs of a doc comment are for readers of the code; the first is the help line that
        /// `relab plugins describe` prints.
        #[param(default = 50, min = 1)]
        k: usize,
        /// damping, in [0, 1), written over
        /// two lines
        #[param(default = 0.99, min = 0.0, below = 1.0)]
        alpha: f64,
        /// a field without `default` takes its type's `Default`
        weights: Option<std::path::PathBuf>,
        #[param(default = vec![4, 7], min = 1)]
        epochs: Vec<usize>,
        /// nested parameters
        #[param(nested, default = Some(Inner { every: 5 }))]
        swa: Option<Inner>,
    }

    #[crate::params(paths("file"), needs = Inner::wants)]
    #[derive(Debug, Clone, PartialEq)]
    struct Inner {
        /// every so many epochs
        #[param(default = 3, min = 1)]
        every: usize,
    }

    impl Inner {
        fn wants(&self) -> Vec<StageNeed> {
            vec![StageNeed::new(StageKind::Pretrain, "every", "every needs it")]
        }
    }

    fn parse<P: PluginParams>(yaml: &str) -> Result<P, ParamError> {
        parse_params(&serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn params_gives_defaults_help_and_range_checks() {
        let p: MyParams = parse("{}").unwrap();
        assert_eq!(p, MyParams::default());
        assert_eq!((p.k, p.alpha, p.weights.clone(), p.epochs.clone()), (50, 0.99, None, vec![4, 7]));
        assert_eq!(p.swa, Some(Inner { every: 5 }));
        assert_eq!(Inner::default(), Inner { every: 3 });
        let docs = describe_params::<MyParams>();
        let shown: Vec<(&str, &str, &str)> =
            docs.iter().map(|d| (d.name.as_str(), d.default.as_str(), d.help.as_str())).collect();
        assert_eq!(
            shown,
            vec![
                ("k", "50", "neighbours of each node"),
                ("alpha", "0.99", "damping, in [0, 1), written over two lines"),
                ("weights", "~", "a field without `default` takes its type's `Default`"),
                ("epochs", "- 4\n- 7", ""),
                ("swa", "every: 5", "nested parameters"),
            ]
        );
        // serde: unknown keys are refused, and each key defaults on its own.
        assert_eq!(parse::<MyParams>("kk: 3").unwrap_err().path, vec!["kk"]);
        assert_eq!(parse::<MyParams>("k: 3").unwrap().alpha, 0.99);
        // Range checks name the key (nested ones under their parent) and what was found.
        let error = |yaml: &str| {
            let e = parse::<MyParams>(yaml).unwrap_err();
            format!("{}: {}", e.path.join("."), e.message)
        };
        assert_eq!(error("k: 0"), "k: must be at least 1, found 0");
        assert_eq!(error("alpha: 1.0"), "alpha: must be a finite number ≥ 0 and < 1, found 1");
        assert_eq!(error("alpha: -0.5"), "alpha: must be a finite number ≥ 0 and < 1, found -0.5");
        assert_eq!(error("alpha: .nan"), "alpha: must be a finite number ≥ 0 and < 1, found NaN");
        assert_eq!(error("epochs: [3, 0]"), "epochs: must be at least 1, found 0");
        assert_eq!(error("swa: {every: 0}"), "swa.every: must be at least 1, found 0");
        assert!(parse::<MyParams>("swa: ~\nk: 1\nalpha: 0").is_ok());
        // The known keys come with a range error too (for "did you mean").
        assert_eq!(parse::<MyParams>("k: 0").unwrap_err().known_keys, ["k", "alpha", "weights", "epochs", "swa"]);
        // Struct arguments.
        assert_eq!(Inner::PATHS, ["file"]);
        assert_eq!(Inner::default().needs()[0].key, ["every"]);
        assert!(MyParams::default().needs().is_empty());
    }
}
