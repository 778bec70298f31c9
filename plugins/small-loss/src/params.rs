use relab_core::data::augment::{PadMode, Pipeline};
use relab_core::nn::BackboneKind;
use relab_core::registry::ParamError;
use relab_core::train::schedule::LrSchedule;
use relab_core::train::{OptimiserSettings, SgdSettings};

/// Defaults are phase 2b's (`docs/method.md` §4, §7.1): a fresh WRN-28-2, 60 epochs of SGD at a constant 0.1
/// (momentum 0.9, Nesterov, weight decay 5e-4), batch 512, pad-4 crop and flip, losses tracked over the last 30
/// epochs, 50 samples kept per class (the CIFAR-10 setting; 40 for CIFAR-100 and miniImageNet). Each field's first
/// doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct SmallLossParams {
    /// network trained from scratch on the propagated labels: wrn28_2 (the method), wrn16_2 or wrn10_2 (quick
    /// runs), resnet18, resnet50
    #[param(default = BackboneKind::Wrn28_2)]
    pub backbone: BackboneKind,
    /// training epochs
    #[param(default = 60, min = 1)]
    pub epochs: usize,
    /// the last this many epochs measure every sample's loss (un-augmented, eval mode)
    ///
    /// Epochs at the end of training whose per-sample losses are averaged.
    #[param(default = 30)]
    pub track_epochs: usize,
    /// samples kept per propagated class, seeds first, then by ascending mean loss
    #[param(default = 50, min = 1)]
    pub per_class: usize,
    /// images per optimiser step
    #[param(default = 512, min = 1)]
    pub batch_size: usize,
    /// learning rate: {lr, milestones (epochs, 1-based), gamma, milestones_in, warmup_steps}
    #[param(default = LrSchedule::constant(0.1))]
    pub schedule: LrSchedule,
    /// SGD: {momentum, nesterov, weight_decay, dampening}
    #[param(default = SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 })]
    pub optimizer: SgdSettings,
    /// training augmentations, e.g. [{crop: {padding: 4}}, flip]
    #[param(default = Pipeline::crop_flip(4, PadMode::Zero))]
    pub augment: Pipeline,
    /// images per batch when measuring the tracked losses
    #[param(default = 512, min = 1)]
    pub eval_batch_size: usize,
    /// quick-run approximation: train and rank on N random training images plus the seeds instead of all images
    /// (only those can be selected); unset = all images, as the method
    #[param(min = 1)]
    pub sample: Option<usize>,
}

impl SmallLossParams {
    /// Values that parse but cannot run, reported at the key that holds them.
    pub fn check(&self) -> Result<(), ParamError> {
        // Counts are checked by their `min = 1` above, when the parameters are parsed.
        let bad = |key: &str, message: String| ParamError { path: vec![key.into()], message, known_keys: vec![] };
        if !(1..=self.epochs).contains(&self.track_epochs) {
            return Err(bad(
                "track_epochs",
                format!("must be between 1 and epochs ({}), found {}", self.epochs, self.track_epochs),
            ));
        }
        self.schedule.check().map_err(|m| bad("schedule", m))?;
        OptimiserSettings::Sgd(self.optimizer.clone()).check().map_err(|m| bad("optimizer", m))?;
        for step in &self.augment.0 {
            step.validate().map_err(|m| bad("augment", m))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::registry::parse_params;

    fn parse(yaml: &str) -> Result<SmallLossParams, ParamError> {
        let p: SmallLossParams = parse_params(&serde_yaml::from_str(yaml).unwrap())?;
        p.check().map(|_| p)
    }

    #[test]
    fn defaults_are_the_methods() {
        let p = parse("{}").unwrap();
        assert_eq!(
            (p.backbone, p.epochs, p.track_epochs, p.per_class, p.batch_size),
            (BackboneKind::Wrn28_2, 60, 30, 50, 512)
        );
        assert_eq!(p.schedule, LrSchedule::constant(0.1));
        assert_eq!(p.optimizer, SgdSettings { momentum: 0.9, nesterov: true, weight_decay: 5e-4, dampening: 0.0 });
        assert_eq!(p.augment, Pipeline::crop_flip(4, PadMode::Zero));
        assert_eq!(p.sample, None);
    }

    #[test]
    fn a_quick_configuration_parses() {
        let p = parse("backbone: wrn10_2\nepochs: 4\ntrack_epochs: 2\nper_class: 10\nsample: 3000").unwrap();
        assert_eq!(
            (p.backbone, p.epochs, p.track_epochs, p.per_class, p.sample),
            (BackboneKind::Wrn10_2, 4, 2, 10, Some(3000))
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let key = |yaml: &str| parse(yaml).unwrap_err().path.join(".");
        assert_eq!(key("epochs: 0"), "epochs");
        assert_eq!(key("per_class: 0"), "per_class");
        assert_eq!(key("batch_size: 0"), "batch_size");
        assert_eq!(key("track_epochs: 0"), "track_epochs");
        assert_eq!(key("epochs: 5\ntrack_epochs: 6"), "track_epochs");
        assert_eq!(key("sample: 0"), "sample");
        assert_eq!(key("schedule: {lr: -1}"), "schedule");
        assert_eq!(key("optimizer: {momentum: 0, nesterov: true}"), "optimizer");
        assert_eq!(key("augment: [{flip: {p: 2}}]"), "augment.0");
        // Parameters built in code are checked too.
        let flip = relab_core::data::augment::Augment::Flip(relab_core::data::augment::Flip { p: 2.0 });
        let built = SmallLossParams { augment: Pipeline::new(vec![flip]), ..SmallLossParams::default() };
        assert_eq!(built.check().unwrap_err().path, vec!["augment".to_string()]);
        assert_eq!(key("track_last: 30"), "track_last");
        let err = parse("epochs: 5\ntrack_epochs: 6").unwrap_err().to_string();
        assert!(err.contains("between 1 and epochs (5), found 6"), "{err}");
    }
}
