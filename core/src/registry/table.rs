use std::collections::BTreeMap;

use super::entry::{PluginEntry, Slot, StaticPlugin};
use crate::{Error, Result};

/// Where an entry came from, for `plugins list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into this binary, by the named crate.
    Static { crate_name: &'static str },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Static { crate_name } => write!(f, "static ({crate_name})"),
        }
    }
}

/// Every plugin this process knows, by slot and name.
#[derive(Debug, Default)]
pub struct Registry {
    entries: BTreeMap<(Slot, &'static str), (PluginEntry, Origin)>,
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

    /// The entry for `name` in `slot`; an unknown name lists the known ones, and a name known in another slot says
    /// which.
    pub fn get(&self, slot: Slot, name: &str) -> Result<&PluginEntry> {
        if let Some((entry, _)) = self.entries.iter().find(|((s, n), _)| *s == slot && *n == name).map(|(_, v)| v) {
            return Ok(entry);
        }
        let known = self.names(slot);
        let mut message = format!("unknown {} `{name}` for stage `{}`", slot.kind(), slot.stage());
        if let Some(other) = Slot::ALL.into_iter().find(|&s| s != slot && self.contains(s, name)) {
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
