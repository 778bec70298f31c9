//! What goes wrong in an experiment file, and where: every error names the file, line and column (or the `--set`
//! text) of the offending value, its key path, what was expected and, for a misspelt name, the nearest valid one.

use std::fmt;
use std::path::PathBuf;

/// Where an offending value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A position in an experiment file; `line` and `column` count from 1.
    File { file: PathBuf, line: usize, column: usize },
    /// A file as a whole (a key that is missing, a file that cannot be read).
    Whole { file: PathBuf },
    /// A value given on the command line as `--set text`.
    Set { text: String },
    /// Nowhere in particular.
    Unknown,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { file, line, column } => {
                write!(f, "{}:{line}:{column}", file.display())
            }
            Location::Whole { file } => write!(f, "{}", file.display()),
            Location::Set { text } => write!(f, "--set {text}"),
            Location::Unknown => Ok(()),
        }
    }
}

/// An experiment file, an `extends:` chain, a `--set` override, a sweep or a plugin's parameters are wrong.
///
/// Displayed as `experiments/x.yaml:12:5: stages.propagate.kk: unknown key; expected one of k, alpha, gamma;
/// did you mean `k`?`.
#[derive(Debug, thiserror::Error)]
#[error("{}{kind}{}", prefix(.location, .path), suffix(.sweep_point))]
pub struct ConfigError {
    pub location: Location,
    /// Dotted key path of the offending value (`stages.propagate.k`); empty when the error concerns a whole file.
    pub path: String,
    /// Boxed to keep `Result<_, ConfigError>` small.
    pub kind: Box<ConfigErrorKind>,
    /// The sweep point being checked (`seed=1,stages.propagate.k=50`), when the experiment has a sweep.
    pub sweep_point: Option<String>,
}

fn prefix(location: &Location, path: &str) -> String {
    let mut out = location.to_string();
    if !out.is_empty() {
        out.push_str(": ");
    }
    if !path.is_empty() {
        out.push_str(path);
        out.push_str(": ");
    }
    out
}

fn suffix(sweep_point: &Option<String>) -> String {
    match sweep_point {
        Some(point) if !point.is_empty() => format!(" (sweep point {point})"),
        _ => String::new(),
    }
}

/// What is wrong, without the where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// The text is not valid YAML.
    #[error("YAML syntax error: {message}")]
    Syntax { message: String },

    /// A file (the experiment or one it extends) exists but cannot be read.
    #[error("cannot read the file: {source}")]
    Io { source: std::io::Error },

    /// The document is not a mapping of keys.
    #[error("an experiment file must be a mapping of keys (name, seed, dataset, stages, ...), found {found}")]
    NotAMapping { found: String },

    /// A key the schema (or the plugin) does not know.
    #[error("unknown key{}{}", expected_list(.expected), did_you_mean(.suggestion))]
    UnknownKey { key: String, expected: Vec<String>, suggestion: Option<String> },

    /// A value outside a fixed set (`backend: gpu`).
    #[error("unknown value `{value}`{}{}", expected_list(.expected), did_you_mean(.suggestion))]
    UnknownValue { value: String, expected: Vec<String>, suggestion: Option<String> },

    /// A value of the wrong type (`k: fifty`).
    #[error("wrong type: expected {expected}, found {found}")]
    WrongType { expected: String, found: String },

    /// A required key is absent.
    #[error("missing required key")]
    MissingKey,

    /// A value of the right type that is still not acceptable (a plugin's cross-parameter check, a negative count).
    #[error("{message}")]
    Invalid { message: String },

    /// `extends:` names a file that does not exist.
    #[error("file `{}` not found (referenced by {})", .target.display(), .referenced_by.display())]
    ExtendsNotFound { target: PathBuf, referenced_by: PathBuf },

    /// `extends:` files that extend each other.
    #[error("cycle: {}", show_chain(.chain))]
    ExtendsCycle { chain: Vec<PathBuf> },

    /// A `plugin:` name the registry does not know; `message` is the registry's, with the known names.
    #[error("{message}{}", did_you_mean(.suggestion))]
    UnknownPlugin { message: String, suggestion: Option<String> },

    /// A `--set` argument that is not `key.path=value`, or whose path cannot be set.
    #[error("bad override: {message}")]
    BadOverride { message: String },

    /// A `sweep:` that is not a mapping of key paths to non-empty lists, or whose key path cannot be set.
    #[error("bad sweep: {message}")]
    BadSweep { message: String },

    /// A stage that names neither `plugin` nor `from`, or both, or parameters beside `from`.
    #[error("{message}")]
    StageSource { message: String },

    /// A plugin's parameter needs another stage that the experiment lacks (or reads from a file).
    #[error("{message}")]
    MissingStage { message: String },

    /// A path (`from:`, `dataset.seeds`) that does not exist.
    #[error("file not found: {}", .path.display())]
    FileNotFound { path: PathBuf },
}

fn expected_list(expected: &[String]) -> String {
    match expected {
        [] => String::new(),
        [one] => format!("; expected {one}"),
        many => format!("; expected one of {}", many.join(", ")),
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
}

fn show_chain(chain: &[PathBuf]) -> String {
    chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> ")
}

impl ConfigError {
    pub fn new(location: Location, path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        ConfigError { location, path: path.into(), kind: Box::new(kind), sweep_point: None }
    }

    /// Marks the error as found while checking one sweep point (no-op for the single point of a sweep-less file).
    pub(crate) fn in_point(mut self, label: &str) -> Self {
        if !label.is_empty() {
            self.sweep_point = Some(label.to_string());
        }
        self
    }
}

/// The candidate nearest to `word`, if it is near enough to be a plausible misspelling.
pub(crate) fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let candidate = c.to_lowercase();
            let distance = strsim::damerau_levenshtein(&lower, &candidate);
            let similarity = strsim::jaro_winkler(&lower, &candidate);
            let contains = lower.len() >= 3 && candidate.contains(&lower);
            let close = distance <= limit || similarity >= 0.88 || contains;
            // Nearest first; among equals, one that contains the word, then the most similar.
            (close, (distance, !contains, std::cmp::Reverse((similarity * 1e6) as u64)), c)
        })
        .filter(|(close, _, _)| *close)
        .min_by_key(|(_, rank, _)| *rank)
        .map(|(_, _, c)| c.to_string())
}

/// Turns a serde message into an error kind: unknown fields and variants become [`ConfigErrorKind::UnknownKey`] and
/// [`ConfigErrorKind::UnknownValue`] with a suggestion, `invalid type` becomes [`ConfigErrorKind::WrongType`].
/// `known_keys`, when given, replaces the field list serde put in its message.
pub(crate) fn classify(message: &str, known_keys: Option<&[String]>) -> ConfigErrorKind {
    if let Some((key, listed)) = unknown_named(message, "unknown field `") {
        let expected = known_keys.map(<[String]>::to_vec).unwrap_or(listed);
        let suggestion = nearest(&key, expected.iter().map(String::as_str));
        return ConfigErrorKind::UnknownKey { key, expected, suggestion };
    }
    if let Some((value, expected)) = unknown_named(message, "unknown variant `") {
        let suggestion = nearest(&value, expected.iter().map(String::as_str));
        return ConfigErrorKind::UnknownValue { value, expected, suggestion };
    }
    if message.starts_with("missing field `") {
        return ConfigErrorKind::MissingKey;
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return ConfigErrorKind::WrongType { expected: readable_type(expected), found: readable_found(found) };
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let message = format!("invalid value: expected {}, found {}", readable_type(expected), readable_found(found));
        return ConfigErrorKind::Invalid { message };
    }
    ConfigErrorKind::Invalid { message: message.to_string() }
}

/// The field a `missing field `x`` message names.
pub(crate) fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The field an `unknown field `x`` message names.
pub(crate) fn unknown_field(message: &str) -> Option<String> {
    unknown_named(message, "unknown field `").map(|(name, _)| name)
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [a, b]); also `expected `a`` and `there are no fields`.
fn unknown_named(message: &str, lead: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(lead)?;
    let end = rest.find('`')?;
    let name = rest[..end].to_string();
    let tail = &rest[end + 1..];
    // serde writes `expected `a``, `expected `a` or `b`` and `expected one of `a`, `b`, `c``.
    let list = tail
        .strip_prefix(", expected one of ")
        .or_else(|| tail.strip_prefix(", expected "))
        .map(|list| {
            list.split(", ")
                .flat_map(|s| s.split(" or "))
                .map(|s| s.trim().trim_matches('`').to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Some((name, list))
}

/// serde's names of what it found, in the words [`super::tree::describe`] uses.
fn readable_found(found: &str) -> String {
    match found {
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        "unit value" => "null (~)".into(),
        other => {
            for (serde, ours) in [
                ("integer ", "an integer "),
                ("string ", "a string "),
                ("floating point ", "a number "),
                ("boolean ", "a boolean "),
            ] {
                if let Some(rest) = other.strip_prefix(serde) {
                    return format!("{ours}{rest}");
                }
            }
            other.to_string()
        }
    }
}

/// serde's Rust-flavoured type names in words a config writer knows.
fn readable_type(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "a string" | "a sequence" | "a map" => expected.replace("a map", "a mapping"),
        "path string" => "a path".into(),
        e if e.starts_with("struct ") => format!("a mapping ({})", &e["struct ".len()..]),
        e if e.starts_with("enum ") => format!("one of the values of {}", &e["enum ".len()..]),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_location_path_and_suggestion() {
        let e = ConfigError::new(
            Location::File { file: "experiments/x.yaml".into(), line: 12, column: 5 },
            "stages.propagate.kk",
            classify("unknown field `kk`", Some(&["k".into(), "alpha".into(), "gamma".into()])),
        );
        assert_eq!(
            e.to_string(),
            "experiments/x.yaml:12:5: stages.propagate.kk: unknown key; expected one of k, alpha, gamma; did you mean `k`?"
        );
        let e = ConfigError::new(
            Location::Set { text: "seed=x".into() },
            "seed",
            classify("invalid type: string \"x\", expected u64", None),
        )
        .in_point("k=1");
        assert_eq!(
            e.to_string(),
            "--set seed=x: seed: wrong type: expected a non-negative integer, found a string \"x\" (sweep point k=1)"
        );
    }

    #[test]
    fn classify_serde_messages() {
        match classify("unknown field `sed`, expected one of `name`, `seed`, `backend`", None) {
            ConfigErrorKind::UnknownKey { key, expected, suggestion } => {
                assert_eq!(key, "sed");
                assert_eq!(expected, ["name", "seed", "backend"]);
                assert_eq!(suggestion.as_deref(), Some("seed"));
            }
            k => panic!("{k:?}"),
        }
        match classify("unknown variant `gpu`, expected one of `cpu`, `wgpu`, `cuda`, `auto`", None) {
            ConfigErrorKind::UnknownValue { value, suggestion, .. } => {
                assert_eq!(value, "gpu");
                assert_eq!(suggestion.as_deref(), Some("wgpu"));
            }
            k => panic!("{k:?}"),
        }
        match classify("unknown field `sorce`, expected `source` or `from`", None) {
            ConfigErrorKind::UnknownKey { expected, suggestion, .. } => {
                assert_eq!(expected, ["source", "from"]);
                assert_eq!(suggestion.as_deref(), Some("source"));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(
            classify("invalid value: integer `-1`, expected u64", None).to_string(),
            "invalid value: expected a non-negative integer, found an integer `-1`"
        );
        assert!(matches!(classify("missing field `dataset`", None), ConfigErrorKind::MissingKey));
        assert_eq!(missing_field("missing field `dataset`").as_deref(), Some("dataset"));
    }

    #[test]
    fn nearest_is_picky() {
        assert_eq!(nearest("kk", ["k", "alpha", "gamma"]).as_deref(), Some("k"));
        assert_eq!(nearest("propogate", ["pretrain", "propagate", "select"]).as_deref(), Some("propagate"));
        assert_eq!(nearest("zzzzzz", ["k", "alpha", "gamma"]), None);
    }
}
