use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dynamic;
use super::entry::{PluginEntry, Slot, StaticPlugin};
use crate::{Error, Result};

/// Where an entry came from, for `plugins list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into this binary, by the named crate.
    Static { crate_name: &'static str },
    /// Loaded at run time from a shared library (its canonical path), defined by the named crate.
    Dynamic { crate_name: &'static str, library: PathBuf },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Static { crate_name } => write!(f, "static ({crate_name})"),
            Origin::Dynamic { crate_name, library } => write!(f, "dynamic ({crate_name}, {})", library.display()),
        }
    }
}

/// Every plugin this process knows, by slot and name.
#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<(Slot, &'static str), (PluginEntry, Origin)>,
    /// Canonical paths of the libraries loaded into this registry, in load order.
    libraries: Vec<PathBuf>,
}

impl Registry {
    /// The compiled-in plugins. Two with the same slot and name are an error naming both crates.
    pub fn with_static() -> Result<Self> {
        let mut registry = Registry::default();
        for item in inventory::iter::<StaticPlugin> {
            registry.add(item.entry, Origin::Static { crate_name: item.crate_name })?;
        }
        Ok(registry)
    }

    /// The compiled-in plugins and those of the libraries `RELAB_PLUGIN_PATH` and `libraries` name, in that order.
    pub fn with_libraries(libraries: &[PathBuf]) -> Result<Self> {
        let mut registry = Registry::with_static()?;
        for library in dynamic::libraries_from_env()?.iter().chain(libraries) {
            registry.load_library(library)?;
        }
        Ok(registry)
    }

    /// Adds one entry; a second entry with the same slot and name is refused.
    pub fn add(&mut self, entry: PluginEntry, origin: Origin) -> Result<()> {
        let key = (entry.slot(), entry.name);
        if let Some((_, existing)) = self.entries.get(&key) {
            return Err(Error::Plugin(format!(
                "{} `{}` is registered twice: by {existing} and by {origin}; rename one of them",
                entry.slot().kind(),
                entry.name
            )));
        }
        self.entries.insert(key, (entry, origin));
        Ok(())
    }

    /// Loads a plugin library (see [`dynamic`]) and adds its entries, all or none: a name that clashes with one
    /// already registered (or twice in the library) refuses the library. Loading one twice is a no-op.
    pub fn load_library(&mut self, path: &Path) -> Result<()> {
        let library = dynamic::load(path)?;
        if self.libraries.contains(&library.path) {
            return Ok(());
        }
        let origin = Origin::Dynamic { crate_name: library.crate_name, library: library.path.clone() };
        let mut trial = Registry { entries: self.entries.clone(), libraries: Vec::new() };
        for entry in &library.entries {
            trial.add(*entry, origin.clone())?;
        }
        self.entries = trial.entries;
        self.libraries.push(library.path);
        Ok(())
    }

    /// Whether the library at `path` is loaded into this registry.
    pub fn has_library(&self, path: &Path) -> bool {
        path.canonicalize().is_ok_and(|p| self.libraries.contains(&p))
    }

    /// The entry for `name` in `slot`; an unknown name lists the known ones, and a name known in another slot says
    /// which.
    pub fn get(&self, slot: Slot, name: &str) -> Result<&PluginEntry> {
        if let Some((entry, _)) = self.entries.iter().find(|((s, n), _)| *s == slot && *n == name).map(|(_, v)| v) {
            return Ok(entry);
        }
        let known = self.names(slot);
        let mut message = format!("unknown {} `{name}` for stage `{}`", slot.kind(), slot.stage());
        if let Some(other) = Slot::SLOTS.into_iter().find(|&s| s != slot && self.contains(s, name)) {
            message.push_str(&format!(" (`{name}` is a {} for stage `{}`)", other.kind(), other.stage()));
        }
        if known.is_empty() {
            message.push_str("; no plugin of this kind is registered");
        } else {
            message.push_str(&format!("; known: {}", known.join(", ")));
        }
        Err(Error::Plugin(message))
    }

    pub fn contains(&self, slot: Slot, name: &str) -> bool {
        self.entries.keys().any(|(s, n)| *s == slot && *n == name)
    }

    /// Names registered for `slot`, sorted.
    pub fn names(&self, slot: Slot) -> Vec<&'static str> {
        self.entries.keys().filter(|(s, _)| *s == slot).map(|(_, n)| *n).collect()
    }

    /// Every entry with its origin, by slot then name.
    pub fn iter(&self) -> impl Iterator<Item = (&PluginEntry, &Origin)> {
        self.entries.values().map(|(e, o)| (e, o))
    }

    /// Entries whose name is `name`, in any slot (for `plugins describe`).
    pub fn find_any(&self, name: &str) -> Vec<(&PluginEntry, &Origin)> {
        self.entries.values().filter(|(e, _)| e.name == name).map(|(e, o)| (e, o)).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::artifact::{Features, LabeledSet, Propagation};
    use crate::component::{Propagator, StageContext};
    use crate::registry::{ParamError, PluginInfo, PluginParams};

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct KParams {
        k: usize,
    }

    impl Default for KParams {
        fn default() -> Self {
            KParams { k: 200 }
        }
    }

    impl PluginParams for KParams {
        fn help() -> &'static [(&'static str, &'static str)] {
            &[("k", "neighbours")]
        }
    }

    struct Uniform;

    impl PluginInfo for Uniform {
        const NAME: &'static str = "uniform";
        const SUMMARY: &'static str = "every class equally likely";
        type Params = KParams;
        fn from_params(p: KParams) -> Result<Self, ParamError> {
            if p.k == 0 {
                return Err(ParamError { path: vec!["k".into()], message: "must be > 0".into(), known_keys: vec![] });
            }
            Ok(Uniform)
        }
    }

    impl Propagator for Uniform {
        fn propagate(&mut self, _: &mut StageContext, f: &Features, _: &LabeledSet, c: usize) -> Result<Propagation> {
            Ok(Propagation::from_scores(c, vec![1.0; f.rows * c]))
        }
    }

    crate::submit_plugin!(propagate, Uniform);

    fn origin() -> Origin {
        Origin::Static { crate_name: "test" }
    }

    #[test]
    fn static_entries_are_collected() {
        let registry = Registry::with_static().unwrap();
        let entry = registry.get(Slot::Propagate, "uniform").unwrap();
        assert_eq!(entry.slot(), Slot::Propagate);
        assert_eq!(entry.summary, "every class equally likely");
        assert_eq!(registry.names(Slot::Propagate), vec!["uniform"]);
        let origins: Vec<String> = registry.iter().map(|(_, o)| o.to_string()).collect();
        assert_eq!(origins, vec!["static (relab-core)"]);
    }

    #[test]
    fn a_name_clash_is_refused_naming_both_origins() {
        let mut registry = Registry::default();
        registry.add(PluginEntry::propagate::<Uniform>("1"), origin()).unwrap();
        let err = registry.add(PluginEntry::propagate::<Uniform>("2"), Origin::Static { crate_name: "other" });
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("registered twice") && msg.contains("(test)") && msg.contains("(other)"), "{msg}");
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones_and_a_wrong_slot_says_which() {
        let mut registry = Registry::default();
        registry.add(PluginEntry::propagate::<Uniform>("1"), origin()).unwrap();
        let msg = registry.get(Slot::Propagate, "unifrom").unwrap_err().to_string();
        assert!(msg.contains("unknown propagator `unifrom`") && msg.contains("known: uniform"), "{msg}");
        let msg = registry.get(Slot::Select, "uniform").unwrap_err().to_string();
        assert!(msg.contains("is a propagator for stage `propagate`"), "{msg}");
        assert!(msg.contains("no plugin of this kind is registered"), "{msg}");
    }

    #[test]
    fn parameters_are_checked_by_the_plugins_own_struct() {
        let entry = PluginEntry::propagate::<Uniform>("1");
        let ok: serde_yaml::Value = serde_yaml::from_str("k: 5").unwrap();
        assert!((entry.validate)(&ok).is_ok());
        assert!((entry.validate)(&serde_yaml::Value::Null).is_ok(), "no parameters: every default");
        let typo: serde_yaml::Value = serde_yaml::from_str("kk: 5").unwrap();
        let err = (entry.validate)(&typo).unwrap_err();
        assert_eq!(err.path, vec!["kk"]);
        assert_eq!(err.known_keys, vec!["k"]);
        let wrong: serde_yaml::Value = serde_yaml::from_str("k: many").unwrap();
        assert_eq!((entry.validate)(&wrong).unwrap_err().path, vec!["k"]);
        let zero: serde_yaml::Value = serde_yaml::from_str("k: 0").unwrap();
        assert_eq!((entry.validate)(&zero).unwrap_err().message, "must be > 0");
        let docs = (entry.describe)();
        assert_eq!(
            (docs[0].name.as_str(), docs[0].default.as_str(), docs[0].help.as_str()),
            ("k", "200", "neighbours")
        );
    }
}
