//! Backend choice. The CPU backend (burn's flex) is the default; `wgpu` and `cuda` exist when relab is built with
//! the cargo features of the same names. Every device is checked with a tiny computation before use, because burn
//! creates a CUDA device without complaint and panics on its first operation when no driver is usable.
//!
//! `backend: auto` takes cuda, then wgpu only when wgpu sees a real GPU, then the CPU: a software Vulkan adapter
//! (Mesa's lavapipe, type CPU) runs burn's GPU kernels on the CPU cores hundreds of times slower than burn's own
//! CPU backend, so a machine without a GPU gets the CPU backend (`relab device` says which and why).

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
            match cuda(index) {
                Ok(device) => return Ok(device),
                Err(e) => refused.push(e.to_string()),
            }
            match auto_wgpu(&wgpu_adapters()) {
                Ok(()) => match wgpu(index) {
                    Ok(device) => return Ok(device),
                    Err(e) => refused.push(e.to_string()),
                },
                Err(why) => refused.push(why),
            }
            tracing::info!("backend auto: using the CPU ({})", refused.join("; "));
            check("cpu", Device::flex())
        }
    }
}

/// Whether this build has the backend `choice` names, without touching a device: what `relab validate` checks.
pub fn compiled(choice: BackendChoice) -> Result<()> {
    match choice {
        BackendChoice::Wgpu if !cfg!(wgpu_backend) => wgpu(0).map(drop),
        BackendChoice::Cuda if !cfg!(feature = "cuda") => cuda(0).map(drop),
        _ => Ok(()),
    }
}

/// The backends this build of relab has, in `auto`'s order of preference reversed: `cpu` always.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut backends = vec!["cpu"];
    if cfg!(wgpu_backend) {
        backends.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        backends.push("cuda");
    }
    backends
}

/// Which kernels this build's wgpu backend runs; `None` without wgpu. burn's autotuning and kernel fusion come
/// with the `wgpu` feature; `wgpu-untuned` alone (the lavapipe test build) runs one fixed kernel per op.
pub fn wgpu_kernels() -> Option<&'static str> {
    if cfg!(feature = "wgpu") {
        Some("autotuned and fused (burn's defaults)")
    } else if cfg!(wgpu_backend) {
        Some("untuned: burn's fixed kernels, no autotuning, no fusion (the test build; train with `--features wgpu`)")
    } else {
        None
    }
}

/// What kind of device a wgpu adapter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    /// A software implementation on the CPU cores (Mesa's lavapipe/llvmpipe, SwiftShader).
    Cpu,
    Other,
}

impl AdapterKind {
    /// Whether the adapter is real graphics hardware, which `auto` may take.
    pub fn is_gpu(self) -> bool {
        matches!(self, AdapterKind::DiscreteGpu | AdapterKind::IntegratedGpu | AdapterKind::VirtualGpu)
    }
}

impl std::fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdapterKind::DiscreteGpu => "discrete GPU",
            AdapterKind::IntegratedGpu => "integrated GPU",
            AdapterKind::VirtualGpu => "virtual GPU",
            AdapterKind::Cpu => "CPU (software Vulkan, e.g. lavapipe)",
            AdapterKind::Other => "other",
        })
    }
}

/// One adapter wgpu sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adapter {
    pub name: String,
    pub kind: AdapterKind,
    /// The driver's name and version, as the driver reports them.
    pub driver: String,
    /// The graphics API wgpu reaches it through (`Vulkan`, `Metal`, `Dx12`, `Gl`).
    pub api: String,
}

/// Whether `auto` takes wgpu given the adapters it sees: only when one of them is a GPU.
pub fn auto_wgpu(adapters: &[Adapter]) -> std::result::Result<(), String> {
    if !cfg!(wgpu_backend) {
        return Err("wgpu: not in this build (`--features wgpu`)".into());
    }
    if adapters.iter().any(|a| a.kind.is_gpu()) {
        return Ok(());
    }
    match adapters.iter().find(|a| a.kind == AdapterKind::Cpu) {
        Some(a) => Err(format!(
            "wgpu: only a software adapter ({}, which runs GPU kernels on the CPU cores far slower than the CPU \
             backend; `backend: wgpu` still uses it)",
            a.name
        )),
        None => Err("wgpu: no adapter found (no Vulkan/Metal/DX12 driver)".into()),
    }
}

/// The adapters wgpu can see on this machine; none without the `wgpu` feature.
#[cfg(wgpu_backend)]
pub fn wgpu_adapters() -> Vec<Adapter> {
    use burn::backend::wgpu::wgpu;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = ready(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .iter()
        .map(|adapter| {
            let info = adapter.get_info();
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => AdapterKind::DiscreteGpu,
                wgpu::DeviceType::IntegratedGpu => AdapterKind::IntegratedGpu,
                wgpu::DeviceType::VirtualGpu => AdapterKind::VirtualGpu,
                wgpu::DeviceType::Cpu => AdapterKind::Cpu,
                wgpu::DeviceType::Other => AdapterKind::Other,
            };
            let driver = [info.driver, info.driver_info].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>();
            Adapter { name: info.name, kind, driver: driver.join(" "), api: format!("{:?}", info.backend) }
        })
        .collect()
}

#[cfg(not(wgpu_backend))]
pub fn wgpu_adapters() -> Vec<Adapter> {
    Vec::new()
}

/// Drives a future that native wgpu resolves without waiting (adapter enumeration) to its value.
#[cfg(wgpu_backend)]
fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::yield_now();
    }
}

/// Makes cubecl's autotuning as cheap as it goes, for test suites on a software adapter: the `minimal` level and
/// one timing per candidate kernel. cubecl tunes every new kernel shape by compiling and timing each candidate,
/// which on lavapipe costs seconds per shape (a conv backward took 172 s with the default level, 5.7 s with
/// `minimal`). Must run before the process's first wgpu operation; `false` when cubecl's configuration was
/// already read or set (then `CUBECL_AUTOTUNE_LEVEL`, cubecl.toml or the earlier setting holds). The tuning results
/// still go to cubecl's persistent cache (`target/environment` under the workspace), so a second run reuses them.
#[cfg(wgpu_backend)]
pub fn quick_autotune() -> bool {
    use burn::cubecl::config::autotune::{AutotuneLevel, BenchConfig};
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut config = CubeClRuntimeConfig::default();
    config.autotune.level = AutotuneLevel::Minimal;
    config.autotune.bench = BenchConfig { min_samples: 1, max_samples: 1, adaptive: false, ..BenchConfig::default() };
    CubeClRuntimeConfig::try_set(config)
}

#[cfg(wgpu_backend)]
fn wgpu(index: usize) -> Result<CheckedDevice> {
    let kind =
        if index == 0 { burn::tensor::DeviceKind::DefaultDevice } else { burn::tensor::DeviceKind::DiscreteGpu(index) };
    check("wgpu", Device::wgpu(kind))
}

#[cfg(not(wgpu_backend))]
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

    #[cfg(not(wgpu_backend))]
    #[test]
    fn wgpu_without_the_feature_is_a_clear_error() {
        let e = resolve(BackendChoice::Wgpu, 0).unwrap_err().to_string();
        assert!(e.contains("--features wgpu"), "{e}");
    }

    #[cfg(not(any(feature = "cuda", wgpu_backend)))]
    #[test]
    fn auto_falls_back_to_a_checked_cpu() {
        assert_eq!(resolve(BackendChoice::Auto, 0).unwrap().backend, "cpu");
    }

    fn adapter(name: &str, kind: AdapterKind) -> Adapter {
        Adapter { name: name.into(), kind, driver: String::new(), api: "Vulkan".into() }
    }

    #[cfg(wgpu_backend)]
    #[test]
    fn auto_takes_wgpu_for_a_gpu_but_not_for_lavapipe_alone() {
        let lavapipe = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", AdapterKind::Cpu);
        let gpu = adapter("NVIDIA H100", AdapterKind::DiscreteGpu);
        let why = auto_wgpu(std::slice::from_ref(&lavapipe)).unwrap_err();
        assert!(why.contains("only a software adapter (llvmpipe"), "{why}");
        assert!(auto_wgpu(&[lavapipe.clone(), gpu]).is_ok());
        assert!(auto_wgpu(&[lavapipe, adapter("Intel UHD", AdapterKind::IntegratedGpu)]).is_ok());
        assert!(auto_wgpu(&[]).unwrap_err().contains("no adapter"));
    }

    #[cfg(not(wgpu_backend))]
    #[test]
    fn a_backend_not_compiled_in_fails_validation() {
        assert!(compiled(BackendChoice::Wgpu).unwrap_err().to_string().contains("--features wgpu"));
        assert!(compiled(BackendChoice::Cpu).is_ok() && compiled(BackendChoice::Auto).is_ok());
    }

    #[cfg(not(wgpu_backend))]
    #[test]
    fn auto_never_takes_wgpu_without_the_feature() {
        let gpu = adapter("NVIDIA H100", AdapterKind::DiscreteGpu);
        assert!(auto_wgpu(&[gpu]).unwrap_err().contains("--features wgpu"));
        assert!(wgpu_adapters().is_empty());
        assert_eq!(compiled_backends()[0], "cpu");
    }
}
