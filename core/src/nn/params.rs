//! Counting trainable parameters the way PyTorch's `sum(p.numel() for p in model.parameters())` does.
//!
//! burn's [`Module::num_params`] also counts batch-norm running statistics (a [`RunningState`] is visited like a
//! parameter), which PyTorch keeps in buffers; [`trainable_params`] leaves them out.
//!
//! [`RunningState`]: burn::module::RunningState
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The number of trainable scalars in `module`: every float parameter except batch-norm running statistics. Does not
/// initialise lazy parameters.
pub fn trainable_params<M: Module>(module: &M) -> usize {
    let mut counter = Counter::default();
    module.visit(&mut counter);
    counter.count
}

#[derive(Default)]
struct Counter {
    /// (field name, type of the struct holding the field) of every field entered and not yet left.
    stack: Vec<(String, String)>,
    count: usize,
}

impl Counter {
    /// Whether the float parameter being visited is a running statistic of a batch norm.
    fn in_running_state(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|(field, container)| field.starts_with("running_") && container == "Struct:BatchNorm")
    }
}

impl ModuleVisitor for Counter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.in_running_state() {
            self.count += param.lazy_shape().num_elements();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Device;

    #[test]
    fn batch_norm_counts_gamma_and_beta_only() {
        let bn = BatchNormConfig::new(7).init(&Device::flex());
        assert_eq!(bn.num_params(), 28, "burn counts the running statistics too");
        assert_eq!(trainable_params(&bn), 14);
    }
}
