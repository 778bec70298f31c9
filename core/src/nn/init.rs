//! Weight initialisation schemes of the reference networks, expressed as burn [`Initializer`]s, and the small layer
//! builders the networks share (bias-free convolutions, batch norms, linear layers with a zero bias).
//!
//! PyTorch equivalents, with `fan_in = c_in·k·k` and `fan_out = c_out·k·k` for a convolution (`d_in`/`d_out` for a
//! linear layer), which is exactly what burn passes to its initialisers:
//! * PyTorch's default for `nn.Conv2d`/`nn.Linear`, `kaiming_uniform_(a = √5)`, is U(−1/√fan_in, 1/√fan_in) for the
//!   weight and the bias. burn's default is the same: `KaimingUniform { gain: 1/√3, fan_out_only: false }` draws from
//!   U(−√3·gain/√fan_in, …) = U(−1/√fan_in, …).
//! * `kaiming_normal_(mode = "fan_out", nonlinearity = "relu")` is N(0, 2/fan_out): `KaimingNormal { gain: √2,
//!   fan_out_only: true }`.
//! * `xavier_normal_` is N(0, 2/(fan_in + fan_out)): `XavierNormal { gain: 1 }`.
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// How the convolutions of a network are initialised (batch norms always start at γ = 1, β = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvInit {
    /// PyTorch's default `kaiming_uniform_(a = √5)`, U(−1/√fan_in, 1/√fan_in): what the CIFAR ResNets of iMix/ReLaB
    /// use (`docs/method.md` §2.3, "Weight init is PyTorch's default").
    PytorchDefault,
    /// `kaiming_normal_(mode = "fan_out", nonlinearity = "relu")`, N(0, 2/fan_out): WRN-28-2 (§5.3) and torchvision's
    /// ImageNet ResNets.
    KaimingNormalFanOut,
}

impl ConvInit {
    /// The burn initialiser for the convolution weights.
    pub fn initializer(self) -> Initializer {
        match self {
            ConvInit::PytorchDefault => pytorch_default(),
            ConvInit::KaimingNormalFanOut => kaiming_normal_fan_out(),
        }
    }
}

/// PyTorch's default initialiser of `nn.Conv2d` and `nn.Linear` weights and biases (burn's default too).
pub fn pytorch_default() -> Initializer {
    Initializer::KaimingUniform { gain: 1.0 / 3f64.sqrt(), fan_out_only: false }
}

/// `kaiming_normal_(mode = "fan_out", nonlinearity = "relu")`: N(0, 2/fan_out).
pub fn kaiming_normal_fan_out() -> Initializer {
    Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: true }
}

/// `xavier_normal_` with gain 1: N(0, 2/(fan_in + fan_out)).
pub fn xavier_normal() -> Initializer {
    Initializer::XavierNormal { gain: 1.0 }
}

/// A square, bias-free convolution with symmetric zero padding.
pub fn conv2d(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    init: ConvInit,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
        .with_bias(false)
        .with_initializer(init.initializer())
        .init(device)
}

/// A batch norm with γ = 1, β = 0, running mean 0 and running variance 1.
///
/// `momentum` is in PyTorch's convention, which burn 0.22 shares: `running = (1 − momentum)·running +
/// momentum·batch`, i.e. the weight of the *new* batch (PyTorch's default 0.1). TensorFlow's `decay` is the weight of
/// the old value, so TF 0.999 is 0.001 here.
pub fn batch_norm(features: usize, momentum: f64, epsilon: f64, device: &Device) -> BatchNorm {
    BatchNormConfig::new(features).with_momentum(momentum).with_epsilon(epsilon).init(device)
}

/// A linear layer whose weight is drawn from `weight_init` and whose bias (if any) starts at zero.
pub fn linear_zero_bias(d_input: usize, d_output: usize, weight_init: Initializer, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_input, d_output).with_initializer(weight_init).init(device);
    if linear.bias.is_some() {
        let bias: Param<_> = Initializer::Zeros.init([d_output], device);
        linear.bias = Some(bias);
    }
    linear
}

/// burn initialises parameters lazily, on first use, drawing from one generator per backend; the first use can come
/// in any order (a save walks a map, a forward pass walks the layers). Drawing every parameter now, in declaration
/// order, makes a new model's weights depend on the device seed alone.
pub fn materialise<M: burn::module::Module>(module: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}
