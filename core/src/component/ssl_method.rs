use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StageContext;
use crate::Result;
use crate::artifact::Features;
use crate::data::{Dataset, ImageSet};
use crate::nn::{Backbone, BackboneConfig};

/// Phase 1: learn an encoder from the training images alone (labels of the dataset must not be used for training;
/// they may be used for monitoring, e.g. a kNN accuracy on the test split).
pub trait SslMethod: Send {
    fn pretrain(&mut self, ctx: &mut StageContext, data: &Dataset) -> Result<Box<dyn Encoder>>;

    /// Rebuilds the encoder this method saved into `dir` (the stage folder of a finished, cached pretrain stage).
    fn load_encoder(&self, ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>>;
}

/// What phase 1 produces: a function from images to feature vectors, able to save itself.
pub trait Encoder: Send + Sync {
    /// Length of one feature vector of the encoder's default output.
    fn feature_dim(&self) -> usize;

    /// Features of every image of `images`, in order, computed in evaluation mode. `output` picks the pooled
    /// backbone feature or the projection head's; `Default` is the one the method recorded as meant for propagation.
    /// An output the encoder does not have is an error that names the ones it has.
    fn extract(&self, ctx: &mut StageContext, images: &ImageSet, output: FeatureOutput) -> Result<Features>;

    /// Writes the weights (safetensors) and a JSON description of the architecture into `dir`.
    fn save(&self, dir: &Path) -> Result<()>;

    /// The encoder's network when it is one of relab's backbones, handed to a learner that starts from it
    /// (`init: pretrain`) without a file in between; `None` for any other network.
    fn backbone(&self) -> Option<(&Backbone, &BackboneConfig)> {
        None
    }
}

/// Which of an encoder's outputs the features stage takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeatureOutput {
    /// The output the SSL method recorded with the encoder (iMix: the projection head, as the original).
    #[default]
    Default,
    /// The backbone's pooled feature.
    Pooled,
    /// The projection head's (L2-normalised) output.
    Head,
}

impl FeatureOutput {
    pub fn name(self) -> &'static str {
        match self {
            FeatureOutput::Default => "default",
            FeatureOutput::Pooled => "pooled",
            FeatureOutput::Head => "head",
        }
    }
}
