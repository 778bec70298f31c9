//! The pipeline's stages: the one list that the registry's slots, the experiment schema's `stages:` and the
//! pipeline all follow.

use serde::{Deserialize, Serialize};

/// The pipeline's stages, in the order they run. Every stage but [`StageKind::Features`] (the host's own) is a
/// slot that a plugin fills; the registry calls it [`Slot`](crate::registry::Slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Pretrain,
    Features,
    Propagate,
    Select,
    Train,
}

impl StageKind {
    /// Every stage, in the order they run.
    pub const ALL: [StageKind; 5] =
        [StageKind::Pretrain, StageKind::Features, StageKind::Propagate, StageKind::Select, StageKind::Train];

    /// The stages a plugin fills, in the order they run: [`StageKind::ALL`] without the host's features stage.
    pub const SLOTS: [StageKind; 4] = [StageKind::Pretrain, StageKind::Propagate, StageKind::Select, StageKind::Train];

    /// The stage key in the YAML (`stages.<name>`), its folder in a run and its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Pretrain => "pretrain",
            StageKind::Features => "features",
            StageKind::Propagate => "propagate",
            StageKind::Select => "select",
            StageKind::Train => "train",
        }
    }

    /// The same as [`StageKind::name`]: the stage key in the YAML (the registry's historical name for it).
    pub fn stage(self) -> &'static str {
        self.name()
    }

    /// The stage named `name` (`stages.<name>`), if any.
    pub fn from_name(name: &str) -> Option<StageKind> {
        StageKind::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a plugin fills this stage (every stage but features).
    pub fn is_slot(self) -> bool {
        self != StageKind::Features
    }

    /// The kind of component that fills the stage, for messages.
    pub fn kind(self) -> &'static str {
        match self {
            StageKind::Pretrain => "SSL method",
            StageKind::Features => "feature source",
            StageKind::Propagate => "propagator",
            StageKind::Select => "selector",
            StageKind::Train => "semi-supervised learner",
        }
    }
}

impl std::fmt::Display for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_all_but_features_in_order() {
        let slots: Vec<_> = StageKind::ALL.into_iter().filter(|s| s.is_slot()).collect();
        assert_eq!(slots, StageKind::SLOTS);
        for s in StageKind::ALL {
            assert_eq!(StageKind::from_name(s.name()), Some(s));
            assert_eq!(serde_yaml::to_value(s).unwrap().as_str(), Some(s.name()));
        }
        assert_eq!(StageKind::from_name("pretrian"), None);
    }
}
