//! Backend choice. The CPU backend (burn's flex) is the default; `wgpu` and `cuda` exist when relab is built with
//! the cargo features of the same names. Every device is checked with a tiny computation before use, because burn
//! creates a CUDA device without complaint and panics on its first operation when no driver is usable.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which backend runs the tensors: the experiment's `backend:` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// burn's pure-Rust CPU backend (flex): the default, and what CI runs.
    #[default]
    Cpu,
    Wgpu,
    Cuda,
    /// cuda, then wgpu, then cpu: the first one compiled in that answers a check.
    Auto,
}

/// A device that answered its check.
#[derive(Debug, Clone)]
pub struct CheckedDevice {
    pub device: Device,
    /// `cpu`, `wgpu` or `cuda`.
    pub backend: &'static str,
}

/// Resolves the experiment's `backend`/`device` into a device that has run a computation.
pub fn resolve(choice: BackendChoice, index: usize) -> Result<CheckedDevice> {
    match choice {
        BackendChoice::Cpu => check("cpu", Device::flex()),
        BackendChoice::Wgpu => wgpu(index),
        BackendChoice::Cuda => cuda(index),
        BackendChoice::Auto => {
            let mut refused = Vec::new();
            for attempt in [cuda as fn(usize) -> Result<CheckedDevice>, wgpu] {
                match attempt(index) {
                    Ok(device) => return Ok(device),
                    Err(e) => refused.push(e.to_string()),
                }
            }
            tracing::info!("backend auto: using the CPU ({})", refused.join("; "));
            check("cpu", Device::flex())
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu(index: usize) -> Result<CheckedDevice> {
    let kind =
        if index == 0 { burn::tensor::DeviceKind::DefaultDevice } else { burn::tensor::DeviceKind::DiscreteGpu(index) };
    check("wgpu", Device::wgpu(kind))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: usize) -> Result<CheckedDevice> {
    Err(Error::Backend(
        "wgpu was asked for, but this relab was built without it; rebuild with `cargo build --release --features wgpu`"
            .into(),
    ))
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<CheckedDevice> {
    check("cuda", Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<CheckedDevice> {
    Err(Error::Backend(
        "cuda was asked for, but this relab was built without it; rebuild with `cargo build --release --features cuda` \
         (burn's CUDA backend downloads an LLVM bundle while building, so that build needs network access)"
            .into(),
    ))
}

/// Runs `1 + 2` on the device; a panic or a wrong answer means the device is unusable.
fn check(backend: &'static str, device: Device) -> Result<CheckedDevice> {
    let probe = device.clone();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let answer =
        catch_unwind(AssertUnwindSafe(|| Tensor::<1>::from_floats([1.0, 2.0], &probe).sum().into_scalar::<f32>()));
    std::panic::set_hook(quiet);
    match answer {
        Ok(3.0) => Ok(CheckedDevice { device, backend }),
        Ok(v) => Err(Error::Backend(format!("{backend} device {device:?} computed 1 + 2 = {v}"))),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "it panicked".into());
            Err(Error::Backend(format!("{backend} device is not usable on this machine: {why}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_answers() {
        let d = resolve(BackendChoice::Cpu, 0).unwrap();
        assert_eq!(d.backend, "cpu");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let e = resolve(BackendChoice::Cuda, 0).unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_is_a_clear_error() {
        let e = resolve(BackendChoice::Wgpu, 0).unwrap_err().to_string();
        assert!(e.contains("--features wgpu"), "{e}");
    }

    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    #[test]
    fn auto_falls_back_to_a_checked_cpu() {
        assert_eq!(resolve(BackendChoice::Auto, 0).unwrap().backend, "cpu");
    }
}
