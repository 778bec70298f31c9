//! `relab device`: the backends this build has, the adapters wgpu sees, and what `backend: auto` picks and why.

use clap::Args;
use relab_core::device::{self, BackendChoice};
use serde_json::json;

#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn device(args: DeviceArgs) -> anyhow::Result<()> {
    let backends = device::compiled_backends();
    let adapters = device::wgpu_adapters();
    let (pick, why) = match device::resolve(BackendChoice::Auto, 0) {
        Ok(d) => (d.backend.to_string(), auto_reason(d.backend, &adapters)),
        Err(e) => ("none".to_string(), e.to_string()),
    };
    if args.json {
        let report = json!({
            "backends": backends,
            "wgpu_kernels": device::wgpu_kernels(),
            "wgpu_adapters": adapters,
            "auto": pick,
            "auto_reason": why,
        });
        println!("{report}");
        return Ok(());
    }
    println!("backends in this build: {}", backends.join(", "));
    if let Some(kernels) = device::wgpu_kernels() {
        println!("wgpu kernels: {kernels}");
        if adapters.is_empty() {
            println!(
                "wgpu adapters: none (no Vulkan driver: apt-get install libvulkan1 mesa-vulkan-drivers, or a GPU driver)"
            );
        } else {
            println!("wgpu adapters:");
            for a in &adapters {
                println!("  {} | {} | {} | driver: {}", a.name, a.kind, a.api, a.driver);
            }
        }
    } else {
        println!("wgpu: not in this build (cargo build --release --features wgpu)");
    }
    println!("backend: auto → {pick} ({why})");
    Ok(())
}

/// Why `auto` landed on `backend`, in the order it tries them.
fn auto_reason(backend: &str, adapters: &[device::Adapter]) -> String {
    match backend {
        "cuda" => "a CUDA device answered".into(),
        "wgpu" => {
            let gpu = adapters.iter().find(|a| a.kind.is_gpu()).map_or("a GPU", |a| a.name.as_str());
            format!("no CUDA; wgpu sees {gpu}")
        }
        _ => {
            let cuda = if cfg!(feature = "cuda") { "no CUDA device answered" } else { "no cuda in this build" };
            let wgpu = device::auto_wgpu(adapters).err().unwrap_or_else(|| "wgpu's device did not answer".into());
            format!("{cuda}; {wgpu}")
        }
    }
}
