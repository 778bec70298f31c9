//! `relab device` and the backend checks of `relab validate`, in any build: with `--features wgpu` the adapters
//! wgpu sees are listed (on a machine with only lavapipe, a CPU-type adapter that `backend: auto` passes over).

use std::process::{Command, Output};

use serde_json::Value;

fn relab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relab")).args(args).env("RUST_LOG", "warn").output().expect("relab runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn device_lists_the_backends_and_says_what_auto_picks() {
    let out = relab(&["device", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let backends: Vec<&str> = report["backends"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert_eq!(backends[0], "cpu");
    assert_eq!(backends.contains(&"wgpu"), cfg!(feature = "wgpu-untuned"), "{backends:?}");
    // `wgpu` includes `wgpu-untuned`: the latter alone means the untuned build.
    let kernels = report["wgpu_kernels"].as_str();
    match (cfg!(feature = "wgpu"), cfg!(feature = "wgpu-untuned")) {
        (true, _) => assert!(kernels.is_some_and(|k| k.starts_with("autotuned")), "{kernels:?}"),
        (false, true) => assert!(kernels.is_some_and(|k| k.starts_with("untuned")), "{kernels:?}"),
        (false, false) => assert_eq!(kernels, None),
    }
    let adapters = report["wgpu_adapters"].as_array().unwrap();
    let auto = report["auto"].as_str().unwrap();
    let reason = report["auto_reason"].as_str().unwrap();
    if !cfg!(feature = "wgpu-untuned") {
        assert!(adapters.is_empty());
        assert_eq!(auto, "cpu");
        assert!(reason.contains("--features wgpu"), "{reason}");
        return;
    }
    assert!(
        !adapters.is_empty(),
        "wgpu sees no adapter: apt-get install libvulkan1 and mesa-vulkan-drivers (Mesa ≥ 25, bookworm-backports), \
         and set XDG_RUNTIME_DIR"
    );
    for a in adapters {
        assert!(a["name"].as_str().is_some_and(|n| !n.is_empty()) && a["kind"].is_string(), "{a}");
    }
    let gpu =
        adapters.iter().any(|a| matches!(a["kind"].as_str(), Some("discrete_gpu" | "integrated_gpu" | "virtual_gpu")));
    if gpu {
        assert!(auto == "wgpu" || auto == "cuda", "a GPU is there, auto took {auto}: {reason}");
    } else {
        // lavapipe (Mesa's llvmpipe) reports itself as a CPU device; auto leaves it for the CPU backend.
        assert!(adapters.iter().any(|a| a["kind"] == "cpu"), "{adapters:?}");
        assert_eq!(auto, "cpu", "{reason}");
        assert!(reason.contains("only a software adapter"), "{reason}");
        let table = relab(&["device"]);
        let table = text(&table);
        assert!(
            table.contains("CPU (software Vulkan, e.g. lavapipe)") && table.contains("backend: auto → cpu"),
            "{table}"
        );
    }
}

#[test]
fn validate_refuses_a_backend_this_build_lacks() {
    // No build here has cuda (its build downloads an LLVM bundle), so this runs in every build.
    if cfg!(feature = "cuda") {
        return;
    }
    let out = relab(&["validate", "experiments/fashion-mnist-40.yaml", "--set", "backend=cuda"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("backend: cuda was asked for") && said.contains("--features cuda"), "{said}");
    let ok = relab(&["validate", "experiments/fashion-mnist-40.yaml", "--set", "backend=auto"]);
    assert!(ok.status.success(), "{}", text(&ok));
}
