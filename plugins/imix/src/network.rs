use relab_core::burn;
use relab_core::burn::module::Module;
use relab_core::burn::tensor::{Device, Tensor};
use relab_core::nn::{Backbone, BackboneConfig, ProjectionHead, ProjectionHeadConfig};
use serde::{Deserialize, Serialize};

/// The network iMix trains: a backbone whose pooled feature goes through the projection head (§2.3). The
/// backbone's own linear classifier is not used; it stays so that the saved backbone is one a learner can load.
#[derive(Module, Debug)]
pub struct ImixNet {
    pub backbone: Backbone,
    pub head: ProjectionHead,
}

/// What rebuilds an [`ImixNet`]: the backbone's description and the head's widths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    pub backbone: BackboneConfig,
    pub head_hidden: usize,
    pub head_output: usize,
}

impl NetSpec {
    pub fn new(backbone: BackboneConfig, head_hidden: Option<usize>, head_output: usize) -> Self {
        let head_hidden = head_hidden.unwrap_or(2 * backbone.feature_dim());
        NetSpec { backbone, head_hidden, head_output }
    }

    pub fn head_config(&self) -> ProjectionHeadConfig {
        ProjectionHeadConfig::new(self.backbone.feature_dim())
            .with_d_hidden(Some(self.head_hidden))
            .with_d_output(self.head_output)
    }

    /// Fresh weights (PyTorch's default initialisation), backbone first.
    pub fn init(&self, device: &Device) -> ImixNet {
        ImixNet { backbone: self.backbone.init(device), head: self.head_config().init(device) }
    }
}

impl ImixNet {
    /// `[B, C, H, W]` images → `[B, d]` unit-norm embeddings.
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward_features(x))
    }

    /// `[B, C, H, W]` images → the backbone's pooled features.
    pub fn pooled(&self, x: Tensor<4>) -> Tensor<2> {
        self.backbone.forward_features(x)
    }
}
