//! `most-confident`: per class, the seeds with their true labels, then the samples the propagation labelled with
//! that class, by decreasing score, until `per_class` samples (ties to the lower index).
//!
//! The template for a selector: parameters (declared once), registration, and the component, which honours the
//! contract of [`Selector`]. `relab new select NAME` copies this file with the names replaced.

use relab_core::artifact::LabeledSet;
use relab_core::component::{Selector, SelectorInput, StageContext};
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::{Error, Result};

/// The YAML parameters; each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct MostConfidentParams {
    /// samples kept per class, seeds included
    #[param(default = 50, min = 1)]
    pub per_class: usize,
}

/// The selector, built from its parameters by the registry.
#[derive(Debug, Clone)]
pub struct MostConfident {
    params: MostConfidentParams,
}

impl PluginInfo for MostConfident {
    const NAME: &'static str = "most-confident";
    const SUMMARY: &'static str =
        "keep per class the seeds, then the samples the propagation scores highest (selector template)";
    type Params = MostConfidentParams;

    fn from_params(params: MostConfidentParams) -> Result<Self, ParamError> {
        Ok(MostConfident { params })
    }
}

relab_core::submit_plugin!(select, MostConfident);

impl Selector for MostConfident {
    fn select(&mut self, ctx: &mut StageContext, input: SelectorInput<'_>) -> Result<LabeledSet> {
        let SelectorInput { data, propagation: p, seeds, .. } = input;
        if p.len() != data.train.len() {
            return Err(Error::stage(
                "select",
                format!("{} propagated labels for {} images", p.len(), data.train.len()),
            ));
        }
        let mut is_seed = vec![false; p.len()];
        for &i in &seeds.indices {
            is_seed[i] = true;
        }
        let mut out = LabeledSet::default();
        for class in 0..p.num_classes as u32 {
            let mut kept: Vec<usize> =
                seeds.indices.iter().zip(&seeds.labels).filter(|(_, l)| **l == class).map(|(i, _)| *i).collect();
            let mut candidates: Vec<usize> = (0..p.len()).filter(|&i| p.labels[i] == class && !is_seed[i]).collect();
            let score = |i: usize| p.scores_of(i)[class as usize];
            candidates.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
            kept.extend(candidates.into_iter().take(self.params.per_class.saturating_sub(kept.len())));
            out.labels.extend(std::iter::repeat_n(class, kept.len()));
            out.indices.extend(kept);
        }
        ctx.set_summary("most_confident_kept", out.len());
        Ok(out)
    }
}
