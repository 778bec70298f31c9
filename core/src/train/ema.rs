//! Exponential moving average of a model's weights (ReMixMatch evaluates the EMA model; method §6.2):
//! after each optimiser step, `ema ← d·ema + (1−d)·w` for every float tensor of the model.
//!
//! As TensorFlow's `ExponentialMovingAverage` over the model's variables, this includes the batch-norm running
//! statistics, and the average starts at the model's weights when the EMA is created. Works for any burn
//! [`Module`]; the average is kept as a [`Module::valid`] copy (no autodiff, evaluation mode), ready to evaluate.
use burn::module::Module;

use super::walk;

/// The EMA of a model.
#[derive(Debug, Clone)]
pub struct Ema<M: Module> {
    model: M,
    decay: f64,
}

impl<M: Module> Ema<M> {
    /// Starts the average at `model`'s current weights.
    pub fn new(model: &M, decay: f64) -> Self {
        assert!((0.0..=1.0).contains(&decay), "EMA decay must be in [0, 1], found {decay}");
        Ema { model: model.valid(), decay }
    }

    /// Continues an average saved earlier (e.g. loaded from a checkpoint into a fresh model).
    pub fn resume(average: M, decay: f64) -> Self {
        Ema::new(&average, decay)
    }

    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// `ema ← d·ema + (1−d)·w` with the weights of `model`, which must have the average's structure.
    pub fn update(&mut self, model: &M) {
        let d = self.decay;
        let mut current = walk::collect(model).into_iter();
        self.model = walk::map(self.model.clone(), |leaf, ema| {
            let w = current.next().unwrap_or_else(|| panic!("EMA: the model has no tensor for {}", leaf.path));
            assert_eq!(w.info.path, leaf.path, "EMA: the model's tensors do not match the average's");
            assert_eq!(w.value.dims(), ema.dims(), "EMA: {} changed shape", leaf.path);
            Some(ema.mul_scalar(d) + w.value.mul_scalar(1.0 - d))
        });
        assert!(current.next().is_none(), "EMA: the model has more tensors than the average");
    }

    /// The averaged model, for evaluation.
    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn into_model(self) -> M {
        self.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::{Device, Tensor, TensorData};

    #[derive(Module, Debug)]
    struct Net {
        lin: Linear,
        bn: BatchNorm,
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    fn set_weight(mut net: Net, w: [f32; 4]) -> Net {
        net.lin.weight = net.lin.weight.map(|t| {
            let plain = Tensor::from_data(TensorData::new(w.to_vec(), [2, 2]), &t.device().without_autodiff());
            super::walk::restore_autodiff(&t, plain)
        });
        net
    }

    #[test]
    fn averages_known_weights_and_running_statistics() {
        let device = Device::flex().autodiff();
        let net = Net { lin: LinearConfig::new(2, 2).init(&device), bn: BatchNormConfig::new(2).init(&device) };
        let net = set_weight(net, [1.0, 2.0, 3.0, 4.0]);
        let mut ema = Ema::new(&net, 0.9);
        assert!(!ema.model().lin.weight.val().is_autodiff());

        let net = set_weight(net, [11.0, 2.0, -7.0, 4.0]);
        // A forward in training mode moves the running mean from 0 to 0.1 × the batch mean (2, 4).
        let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, 3., 3., 5.], [2, 2]), &device);
        let _ = net.bn.forward(x);
        ema.update(&net);
        // 0.9·[1,2,3,4] + 0.1·[11,2,−7,4] = [2, 2, 2, 4].
        let w = values(ema.model().lin.weight.val());
        assert!(w.iter().zip([2.0, 2.0, 2.0, 4.0]).all(|(a, b)| (a - b).abs() < 1e-6), "{w:?}");
        // Running mean 0.9·0 + 0.1·[0.2, 0.4]; bias unchanged by averaging equal values.
        let m = values(ema.model().bn.running_mean.value());
        assert!((m[0] - 0.02).abs() < 1e-7 && (m[1] - 0.04).abs() < 1e-7, "{m:?}");
        values(ema.model().lin.bias.as_ref().unwrap().val())
            .iter()
            .zip(values(net.lin.bias.as_ref().unwrap().val()))
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-6));

        ema.update(&net);
        let w = values(ema.model().lin.weight.val());
        // 0.9·2 + 0.1·11 = 2.9; 0.9·2 − 0.7 = 1.1.
        assert!((w[0] - 2.9).abs() < 1e-5 && (w[2] - 1.1).abs() < 1e-5, "{w:?}");
        // The training model is untouched and still trains.
        assert_eq!(values(net.lin.weight.val()), vec![11.0, 2.0, -7.0, 4.0]);
        assert!(net.lin.weight.val().is_require_grad());
    }
}
