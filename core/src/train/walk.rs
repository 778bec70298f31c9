//! Walking a module's float tensors with their paths, for any burn [`Module`]: the shared machinery of EMA, SWA,
//! decoupled weight decay, batch-norm recompute and checkpoint parameter ids.
//!
//! Every float tensor the module visits is a *leaf*: a parameter or a batch-norm running statistic (burn visits a
//! [`RunningState`](burn::module::RunningState) like a parameter). Leaves are handed out flattened to rank 1, so
//! code working on them needs no const-generic rank, and put back in their shape.
//!
//! Two burn behaviours are handled here once:
//! * A running statistic updated by a forward pass stays *pending* (per thread) until the next update or a sync, and
//!   visiting reads the stale value. [`collect`] therefore reads a [`Module::valid`] copy, which syncs first.
//! * A parameter of an autodiff module must stay an autodiff leaf with its gradient setting and checkpointing
//!   strategy; [`map`] computes on the inner (plain) tensor and restores that state, as burn's own optimisers do.
use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// What a leaf is, from the field name and the type of the struct holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeafKind {
    /// The `weight` of a convolution or linear layer (what TensorFlow calls a kernel).
    Kernel,
    /// `running_mean` / `running_var` of a batch norm: a buffer, not a trainable parameter.
    RunningStat,
    /// Anything else: biases, batch-norm scale and shift, custom parameters.
    Other,
}

/// Layer types whose `weight` is a kernel.
const KERNEL_HOLDERS: [&str; 8] = [
    "Struct:Linear",
    "Struct:Conv1d",
    "Struct:Conv2d",
    "Struct:Conv3d",
    "Struct:ConvTranspose1d",
    "Struct:ConvTranspose2d",
    "Struct:ConvTranspose3d",
    "Struct:DeformConv2d",
];

/// Everything known about one leaf while walking.
#[derive(Debug, Clone)]
pub(crate) struct LeafInfo {
    /// Field names from the root, dot-joined (`layer1.0.conv1.weight`, `bn.running_var`).
    pub path: String,
    pub kind: LeafKind,
    pub id: ParamId,
    /// Whether the tensor takes part in training (false for running statistics, frozen parameters and any leaf of
    /// a module without autodiff).
    pub require_grad: bool,
}

/// One leaf's value, flattened, without autodiff.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub info: LeafInfo,
    pub value: Tensor<1>,
}

/// The path stack a visitor or mapper keeps while walking.
#[derive(Default)]
pub(crate) struct PathStack {
    entries: Vec<(String, String)>,
}

impl PathStack {
    pub fn enter(&mut self, name: &str, container: &str) {
        self.entries.push((name.to_string(), container.to_string()));
    }

    pub fn exit(&mut self) {
        self.entries.pop();
    }

    /// The path of the module holding the current leaf (`bn` for `bn.running_mean`).
    pub fn parent(path: &str) -> &str {
        path.rsplit_once('.').map_or("", |(p, _)| p)
    }

    pub fn path(&self) -> String {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        names.join(".")
    }

    pub fn kind(&self) -> LeafKind {
        match self.entries.last() {
            Some((field, holder)) if field == "weight" && KERNEL_HOLDERS.contains(&holder.as_str()) => LeafKind::Kernel,
            Some((field, holder)) if field.starts_with("running_") && holder == "Struct:BatchNorm" => {
                LeafKind::RunningStat
            }
            _ => LeafKind::Other,
        }
    }

    fn info<const D: usize>(&self, id: ParamId, value: &Tensor<D>) -> LeafInfo {
        LeafInfo { path: self.path(), kind: self.kind(), id, require_grad: value.is_require_grad() }
    }
}

/// Every float leaf of `module`, in visiting order, read from a synced [`Module::valid`] copy. Ids and
/// `require_grad` are those of `module` itself.
pub(crate) fn collect<M: Module>(module: &M) -> Vec<Leaf> {
    let mut infos = Collector::default();
    module.visit(&mut infos);
    let mut values = Collector::default();
    module.valid().visit(&mut values);
    assert_eq!(infos.leaves.len(), values.leaves.len(), "a module and its valid() copy have the same leaves");
    infos
        .leaves
        .into_iter()
        .zip(values.leaves)
        .map(|(info, value)| Leaf { info: info.info, value: value.value })
        .collect()
}

/// Every float leaf of `module` by path, as the bytes of its synced value: what a test compares to prove that
/// weights or statistics stayed bit-identical or moved.
pub fn leaf_bytes<M: Module>(module: &M) -> Vec<(String, Vec<u8>)> {
    collect(module).into_iter().map(|l| (l.info.path, l.value.into_data().as_bytes().to_vec())).collect()
}

/// Paths of the batch norms whose training flag is off (frozen with `Module::freeze`, or a `valid()` copy): their
/// forward passes use, and never update, the running statistics.
pub(crate) fn inactive_batch_norms<M: Module>(module: &M) -> std::collections::BTreeSet<String> {
    let mut c = Collector::default();
    module.visit(&mut c);
    c.inactive
}

/// The leaves' paths and ids only (no values read).
pub(crate) fn infos<M: Module>(module: &M) -> Vec<LeafInfo> {
    let mut c = Collector::default();
    module.visit(&mut c);
    c.leaves.into_iter().map(|l| l.info).collect()
}

#[derive(Default)]
struct Collector {
    stack: PathStack,
    leaves: Vec<Leaf>,
    inactive: std::collections::BTreeSet<String>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let info = self.stack.info(param.id, &value);
        let n = value.shape().num_elements();
        self.leaves.push(Leaf { info, value: value.inner().reshape([n]) });
    }

    fn visit_flag(&mut self, flag: &Param<Flag>) {
        if let Some((field, holder)) = self.stack.entries.last()
            && field == "training"
            && holder == "Struct:BatchNorm"
            && !flag.is_enabled()
        {
            let names: Vec<&str> =
                self.stack.entries[..self.stack.entries.len() - 1].iter().map(|(n, _)| n.as_str()).collect();
            self.inactive.insert(names.join("."));
        }
    }
}

/// Maps every float leaf of `module`: `f` gets the leaf and its current value (flattened, without autodiff) and
/// returns the new flat value, or `None` to leave the leaf untouched. Autodiff leaves stay autodiff leaves with
/// their gradient setting and checkpointing strategy.
pub(crate) fn map<M: Module>(module: M, f: impl FnMut(&LeafInfo, Tensor<1>) -> Option<Tensor<1>>) -> M {
    let mut mapper = Mapper { stack: PathStack::default(), f };
    module.map(&mut mapper)
}

struct Mapper<F> {
    stack: PathStack,
    f: F,
}

impl<F: FnMut(&LeafInfo, Tensor<1>) -> Option<Tensor<1>>> ModuleMapper for Mapper<F> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val();
        let info = self.stack.info(param.id, &value);
        let dims = value.dims();
        let n = value.shape().num_elements();
        let Some(new) = (self.f)(&info, value.clone().inner().reshape([n])) else {
            return param;
        };
        assert_eq!(new.dims(), [n], "{}: a leaf keeps its number of elements", info.path);
        let new: Tensor<D> = restore_autodiff(&value, new.inner().reshape(dims));
        let (id, _, mapper) = param.consume();
        Param::from_mapped_value(id, new, mapper)
    }
}

/// Puts `updated` (plain) back into the autodiff state `like` has: autodiff, checkpointing strategy and whether it
/// requires a gradient — what burn's optimisers do to the parameters they update.
pub(crate) fn restore_autodiff<const D: usize>(like: &Tensor<D>, updated: Tensor<D>) -> Tensor<D> {
    if !like.is_autodiff() {
        return updated;
    }
    let mut t = Tensor::from_inner(updated);
    if let Some(strategy) = like.gradient_checkpointing_strategy() {
        t = t.with_gradient_checkpointing_strategy(strategy);
    }
    if like.is_require_grad() { t.require_grad() } else { t }
}

/// Sets the parameter ids of `module` from `ids` (path → id), for leaves whose path is listed. Running statistics
/// keep their own ids (burn's `RunningState` ignores a mapped id; optimisers never hold state for them).
pub(crate) fn set_ids<M: Module>(module: M, ids: &std::collections::BTreeMap<String, u64>) -> M {
    let mut mapper = IdMapper { stack: PathStack::default(), ids };
    module.map(&mut mapper)
}

struct IdMapper<'a> {
    stack: PathStack,
    ids: &'a std::collections::BTreeMap<String, u64>,
}

impl ModuleMapper for IdMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.ids.get(&self.stack.path()) {
            Some(&id) if ParamId::from(id) != param.id => {
                let (_, value, mapper) = param.consume();
                Param::from_mapped_value(ParamId::from(id), value, mapper)
            }
            _ => param,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    #[derive(Module, Debug)]
    pub(crate) struct Net {
        pub lin: Linear,
        pub bn: BatchNorm,
        pub scale: Param<Tensor<1>>,
    }

    #[test]
    fn leaves_have_paths_and_kinds() {
        let device = Device::flex();
        let net = Net {
            lin: LinearConfig::new(3, 2).init(&device),
            bn: BatchNormConfig::new(2).init(&device),
            scale: Param::from_tensor(Tensor::ones([2], &device)),
        };
        let got: Vec<(String, LeafKind)> = infos(&net).into_iter().map(|i| (i.path, i.kind)).collect();
        let want = [
            ("lin.weight", LeafKind::Kernel),
            ("lin.bias", LeafKind::Other),
            ("bn.gamma", LeafKind::Other),
            ("bn.beta", LeafKind::Other),
            ("bn.running_mean", LeafKind::RunningStat),
            ("bn.running_var", LeafKind::RunningStat),
            ("scale", LeafKind::Other),
        ];
        assert_eq!(got, want.map(|(p, k)| (p.to_string(), k)).to_vec());
    }

    #[test]
    fn collect_sees_the_latest_running_statistics_and_map_keeps_autodiff_leaves() {
        let device = Device::flex().autodiff();
        let bn = BatchNormConfig::new(2).init(&device);
        let rows: Vec<f32> = (0..8).flat_map(|i| [i as f32, 2.0 * i as f32]).collect();
        let x = Tensor::<2>::from_data(TensorData::new(rows, [8, 2]), &device);
        let _ = bn.forward(x.clone());
        let _ = bn.forward(x);
        // Two updates with momentum 0.1 from 0 give 0.19 × the batch mean (3.5, 7); plain visiting shows 0.1 ×.
        let mean = collect(&bn).into_iter().find(|l| l.info.path == "running_mean").unwrap().value;
        let m: Vec<f32> = mean.into_data().try_into_vec_as::<f32>().unwrap();
        assert!((m[0] - 0.665).abs() < 1e-5 && (m[1] - 1.33).abs() < 1e-5, "{m:?}");

        let bn = map(bn, |info, v| (info.kind == LeafKind::Other).then(|| v.mul_scalar(2.0)));
        assert!(bn.gamma.val().is_autodiff() && bn.gamma.val().is_require_grad());
        let gamma: Vec<f32> = bn.gamma.val().into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(gamma, vec![2.0, 2.0]);
    }
}
