//! Saving and restoring what a training loop needs to continue bit-identically: a module's weights (safetensors,
//! through burn-store) and an optimiser's state (burn's optimiser record, a burnpack file), into one folder —
//! typically the one `StageContext::save_checkpoint(&state, |dir| ...)` hands out:
//!
//! ```ignore
//! ctx.save_checkpoint(&state, |dir| {
//!     checkpoint::save_module(dir, "model", &model)?;
//!     checkpoint::save_optimiser(dir, "optimiser", &optimiser)
//! })?;
//! // on --resume, with `folder` from ctx.restore_checkpoint():
//! let model = checkpoint::load_module(&folder, "model", model)?;
//! let optimiser = checkpoint::load_optimiser(&folder, "optimiser", optimiser)?;
//! ```
//!
//! burn keys optimiser state by parameter id, and safetensors stores no ids; so beside `<name>.safetensors` goes
//! `<name>.ids.json` (module path → id), and loading gives the fresh module the saved ids, which the saved
//! optimiser state refers to. Batch-norm running statistics are synced before saving (burn holds the latest
//! update pending until the next forward pass).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use super::optim::Optimiser;
use super::walk::{self, LeafKind};
use crate::formats::atomic::{write_bytes, write_json};
use crate::{Error, Result};

/// `<dir>/<name>.safetensors`
pub fn weights_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.safetensors"))
}

/// `<dir>/<name>.ids.json`
pub fn ids_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ids.json"))
}

/// `<dir>/<name>.bpk`
pub fn optimiser_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.bpk"))
}

/// Writes every float tensor of `module` (parameters and running statistics) to `<name>.safetensors` and its
/// parameter ids to `<name>.ids.json`, atomically each.
pub fn save_module<M: Module>(dir: &Path, name: &str, module: &M) -> Result<()> {
    let path = weights_path(dir, name);
    // valid() syncs pending running statistics and gives plain tensors to read.
    let snapshot = module.valid();
    let mut store = SafetensorsStore::from_bytes(None);
    snapshot.save_into(&mut store).map_err(|e| Error::format(&path, format!("cannot serialise the weights: {e}")))?;
    let bytes = store.get_bytes().map_err(|e| Error::format(&path, format!("cannot serialise the weights: {e}")))?;
    write_bytes(&path, &bytes)?;
    write_json(&ids_path(dir, name), &param_ids(module))
}

/// Loads what [`save_module`] wrote into `module` (a freshly built one of the same structure), strictly: every
/// tensor of the module must be in the file with its shape, and every tensor of the file in the module. The
/// module gets the saved parameter ids.
pub fn load_module<M: Module>(dir: &Path, name: &str, module: M) -> Result<M> {
    let path = weights_path(dir, name);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let mut module = module;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let applied = module
        .load_from(&mut store)
        .map_err(|e| Error::format(&path, format!("these weights do not fit the model: {e}")))?;
    if !applied.unused.is_empty() || !applied.errors.is_empty() {
        return Err(Error::format(
            &path,
            format!(
                "these weights do not fit the model: tensors not in the model: [{}]; errors: [{}]",
                applied.unused.join(", "),
                applied.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ),
        ));
    }
    let ids_file = ids_path(dir, name);
    let text = std::fs::read_to_string(&ids_file).map_err(|e| Error::io(&ids_file, e))?;
    let ids: BTreeMap<String, u64> = serde_json::from_str(&text)
        .map_err(|e| Error::format(&ids_file, format!("not a map of parameter paths to ids: {e}")))?;
    let module = walk::set_ids(module, &ids);
    let missing: Vec<String> =
        param_ids(&module).into_iter().filter(|(p, id)| ids.get(p) != Some(id)).map(|(p, _)| p).collect();
    if !missing.is_empty() {
        return Err(Error::format(&ids_file, format!("no saved id for the parameters {}", missing.join(", "))));
    }
    Ok(module)
}

/// Writes the optimiser's state to `<name>.bpk`.
pub fn save_optimiser(dir: &Path, name: &str, optimiser: &Optimiser) -> Result<()> {
    optimiser.save(&optimiser_path(dir, name))
}

/// Restores the state [`save_optimiser`] wrote into `optimiser` (built with the same settings).
pub fn load_optimiser(dir: &Path, name: &str, optimiser: Optimiser) -> Result<Optimiser> {
    optimiser.load(&optimiser_path(dir, name))
}

/// Path → id of every trainable-or-not parameter (running statistics left out: their ids are never restored).
fn param_ids<M: Module>(module: &M) -> BTreeMap<String, u64> {
    walk::infos(module).into_iter().filter(|i| i.kind != LeafKind::RunningStat).map(|i| (i.path, i.id.val())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::losses::{cross_entropy, labels_tensor};
    use crate::train::optim::{AdamSettings, OptimiserSettings, SgdSettings};
    use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    #[derive(Module, Debug)]
    struct Tiny {
        a: Linear,
        bn: BatchNorm,
        b: Linear,
    }

    fn tiny(device: &Device) -> Tiny {
        Tiny {
            a: LinearConfig::new(3, 4).init(device),
            bn: BatchNormConfig::new(4).init(device),
            b: LinearConfig::new(4, 2).init(device),
        }
    }

    /// One SGD/Adam step on a batch that depends only on `step`.
    fn train_step(model: Tiny, opt: &mut Optimiser, step: usize, device: &Device) -> Tiny {
        let x: Vec<f32> = (0..15).map(|i| (((i + 7 * step) * 37 % 23) as f32 / 11.0) - 1.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [5, 3]), device);
        let y = labels_tensor(&[(step % 2) as u32, 1, 0, 1, 0], device);
        let loss = cross_entropy(model.b.forward(model.bn.forward(model.a.forward(x))), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        opt.step(0.05, model, grads)
    }

    fn bytes(model: &Tiny) -> Vec<(String, Vec<u8>)> {
        walk::collect(model).into_iter().map(|l| (l.info.path, l.value.into_data().as_bytes().to_vec())).collect()
    }

    #[test]
    fn resumed_training_is_bit_identical() {
        let device = Device::flex().autodiff();
        for settings in [
            OptimiserSettings::Sgd(SgdSettings::default()),
            OptimiserSettings::Adam(AdamSettings { weight_decay: 0.5, ..AdamSettings::default() }),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut model = tiny(&device);
            let mut opt = Optimiser::new(&settings);
            for s in 0..3 {
                model = train_step(model, &mut opt, s, &device);
            }
            save_module(dir.path(), "model", &model).unwrap();
            save_optimiser(dir.path(), "optimiser", &opt).unwrap();
            for s in 3..6 {
                model = train_step(model, &mut opt, s, &device);
            }

            let fresh = tiny(&device);
            assert_ne!(bytes(&fresh), bytes(&model));
            let mut resumed = load_module(dir.path(), "model", fresh).unwrap();
            let mut opt = load_optimiser(dir.path(), "optimiser", Optimiser::new(&settings)).unwrap();
            assert!(resumed.a.weight.val().is_require_grad());
            for s in 3..6 {
                resumed = train_step(resumed, &mut opt, s, &device);
            }
            assert_eq!(bytes(&resumed), bytes(&model), "{settings:?}");
        }
    }

    #[test]
    fn mismatched_files_are_reported() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load_module(dir.path(), "model", tiny(&device)), Err(Error::Io { .. })));
        let other = LinearConfig::new(3, 4).init(&device);
        save_module(dir.path(), "model", &other).unwrap();
        let err = load_module(dir.path(), "model", tiny(&device)).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        save_module(dir.path(), "model", &tiny(&device)).unwrap();
        let err = load_module(dir.path(), "model", other).unwrap_err();
        assert!(matches!(err, Error::Format { .. }) && err.to_string().contains("model.safetensors"), "{err}");
        let opt = Optimiser::new(&OptimiserSettings::Sgd(SgdSettings::default()));
        assert!(matches!(load_optimiser(dir.path(), "optimiser", opt), Err(Error::Io { .. })));
    }
}
