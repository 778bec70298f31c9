//! Plugin libraries as a researcher uses them: the example crate `plugins/examples/rotation-ssl` is built with
//! cargo, loaded by the `relab` binary from `--plugin`, `RELAB_PLUGIN_PATH` or `plugins:`, and pretrains through the
//! host's device (a second burn would panic at the first `backward()`); a forged stamp, a library that is not a
//! plugin, and a clash are refused with messages that say why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use relab_core::artifact::npy;
use serde_json::Value;

/// `target/<profile>`, where cargo put the `relab` binary of this test run.
fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_relab")).parent().unwrap().to_path_buf()
}

/// Builds the example library and the faulty test fixture (and the binary, so that all link the same
/// librelab_core.so whatever features this test run unified) with the profile of this test run, once per test
/// binary, and returns the example library's path.
fn example_library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "relab", "-p", "relab-example-rotation", "-p", "relab-test-faulty-plugin"])
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        // The features of this test run too: built without them, relab-core would be compiled anew with other
        // features and written over the librelab_core.so this run's test binaries load.
        let features = [
            cfg!(feature = "wgpu").then_some("relab/wgpu"),
            cfg!(feature = "wgpu-untuned").then_some("relab/wgpu-untuned"),
            cfg!(feature = "cuda").then_some("relab/cuda"),
        ];
        for feature in features.into_iter().flatten() {
            cmd.args(["--features", feature]);
        }
        let out = cmd.output().expect("cargo runs");
        assert!(out.status.success(), "building the example plugin failed:\n{}", text(&out));
        let library = dir.join(format!("librelab_example_rotation.{}", std::env::consts::DLL_EXTENSION));
        assert!(library.is_file(), "{} was not built", library.display());
        library
    })
}

/// `tests/fixtures/faulty-plugin`, built with the example.
fn faulty_library() -> PathBuf {
    example_library().with_file_name(format!("librelab_test_faulty_plugin.{}", std::env::consts::DLL_EXTENSION))
}

fn relab(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relab"));
    cmd.args(args).env("RUST_LOG", "warn").env_remove("RELAB_PLUGIN_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("relab runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn plugins_list_marks_the_library_s_entries_as_dynamic() {
    let library = example_library();
    let canonical = library.canonicalize().unwrap();
    let expected = format!("dynamic (relab-example-rotation, {})", canonical.display());
    let out = relab(&["--plugin", s(library), "plugins", "list"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = listing.lines().find(|l| l.contains(" rotation ")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.starts_with("pretrain") && line.contains(&expected), "{line}");
    assert!(listing.lines().any(|l| l.contains(" imix ") && l.contains("static (relab-plugin-imix)")), "{listing}");

    // The same through RELAB_PLUGIN_PATH naming a folder of plugin libraries; `describe` shows the parameters.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join(library.file_name().unwrap());
    std::fs::copy(library, &copy).unwrap();
    let out = relab(&["plugins", "describe", "rotation"], &[("RELAB_PLUGIN_PATH", tmp.path())]);
    assert!(out.status.success(), "{}", text(&out));
    let description = text(&out);
    let expected = format!("dynamic (relab-example-rotation, {})", copy.canonicalize().unwrap().display());
    assert!(description.contains(&expected) && description.contains("images_per_epoch"), "{description}");

    // The example experiment validates with it (its `plugins:` names the release build; this run's is used).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/examples/rotation-ssl/rotation.yaml");
    let set = format!("plugins=[{}]", s(library));
    let out = relab(&["validate", s(&example), "--set", &set], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Without it, the name is unknown and the known ones are listed.
    let out = relab(&["plugins", "describe", "rotation"], &[]);
    assert!(!out.status.success() && text(&out).contains("known: "), "{}", text(&out));
}

#[test]
fn a_forged_stamp_is_refused_naming_both_stamps() {
    let library = example_library();
    let mut bytes = std::fs::read(library).unwrap();
    // The stamp the library was compiled with is in its own bytes: forge the burn version in it.
    let stamp = relab_core::abi::STAMP.as_bytes();
    let at = bytes.windows(stamp.len()).position(|w| w == stamp).expect("the library carries its own stamp");
    let burn = relab_core::abi::STAMP.find("; burn ").unwrap() + "; burn ".len();
    bytes[at + burn] = if bytes[at + burn] == b'9' { b'8' } else { b'9' };
    let forged_stamp = String::from_utf8(bytes[at..at + stamp.len()].to_vec()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let forged = tmp.path().join(format!("libforged.{}", std::env::consts::DLL_EXTENSION));
    std::fs::write(&forged, &bytes).unwrap();

    let out = relab(&["--plugin", s(&forged), "plugins", "list"], &[]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains(s(&forged)) && message.contains("built against another relab-core"), "{message}");
    assert!(message.contains(&format!("library stamp: {forged_stamp}")), "{message}");
    assert!(message.contains(&format!("relab stamp:   {}", relab_core::abi::STAMP)), "{message}");
    assert!(message.contains("rebuild"), "{message}");
}

#[test]
fn a_library_that_is_not_a_plugin_and_a_missing_file_are_refused() {
    // relab-core itself is a shared library, and not a plugin.
    let core = profile_dir().join(format!("librelab_core.{}", std::env::consts::DLL_EXTENSION));
    let core = if core.is_file() { core } else { profile_dir().join("deps").join(core.file_name().unwrap()) };
    let out = relab(&["--plugin", s(&core), "plugins", "list"], &[]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains("not a relab plugin") && message.contains("relab_plugin_stamp"), "{message}");

    let out = relab(&["--plugin", "/nonexistent/libplugin.so", "plugins", "list"], &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/nonexistent/libplugin.so: no such file"), "{}", text(&out));
}

#[test]
fn a_name_clash_is_refused_naming_both_libraries() {
    let library = example_library();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join(format!("librotation_copy.{}", std::env::consts::DLL_EXTENSION));
    std::fs::copy(library, &copy).unwrap();
    let out = relab(&["--plugin", s(library), "--plugin", s(&copy), "plugins", "list"], &[]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains("SSL method `rotation` is registered twice"), "{message}");
    assert!(message.contains(s(&library.canonicalize().unwrap())), "{message}");
    assert!(message.contains(s(&copy.canonicalize().unwrap())), "{message}");

    // The same library named twice (flag and environment) is loaded once, not a clash.
    let out = relab(&["--plugin", s(library), "plugins", "list"], &[("RELAB_PLUGIN_PATH", library)]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_failing_registration_and_a_clash_with_a_compiled_in_plugin_are_refused() {
    let faulty = faulty_library();
    let path = faulty.canonicalize().unwrap();
    let run = |how: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relab"));
        cmd.args(["--plugin", s(&faulty), "plugins", "list"]).env("RELAB_FAULTY_PLUGIN", how);
        let out = cmd.env_remove("RELAB_PLUGIN_PATH").output().expect("relab runs");
        assert!(!out.status.success(), "{how}: {}", text(&out));
        text(&out)
    };
    let message = run("clash");
    let expected = format!(
        "SSL method `imix` is registered twice: by static (relab-plugin-imix) and by dynamic \
         (relab-test-faulty-plugin, {})",
        path.display()
    );
    assert!(message.contains(&expected), "{message}");
    let message = run("panic");
    assert!(message.contains(s(&path)) && message.contains("registration panicked: registration failed on purpose"));
    let message = run("empty");
    assert!(message.contains(s(&path)) && message.contains("returned no plugins"), "{message}");
}

#[test]
#[ignore = "about 2 minutes on 2 cores; CI runs it with `cargo test --workspace -- --ignored`"]
fn the_example_library_pretrains_through_the_host_s_device_and_its_features_are_propagated() {
    relab_core_data_check();
    let library = example_library();
    let tmp = tempfile::tempdir().unwrap();
    // `plugins:` is relative to the experiment file.
    std::fs::copy(library, tmp.path().join("librotation.so")).unwrap();
    let experiment = tmp.path().join("rotation.yaml");
    std::fs::write(
        &experiment,
        "name: rotation-tiny\nseed: 3\nplugins: [librotation.so]\n\
         dataset: { name: fashion-mnist, labels_per_class: 4, train_limit: 1000, test_limit: 200, resize: 16 }\n\
         stages:\n\
         \x20 pretrain: { plugin: rotation, epochs: 4, batch_size: 32, schedule: { lr: 0.05 } }\n\
         \x20 features: { output: pooled }\n\
         \x20 propagate: { plugin: diffusion, k: 20 }\n",
    )
    .unwrap();
    let out_dir = tmp.path().join("run");
    let out = relab(&["run", s(&experiment), "--out", s(&out_dir), "--no-cache"], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // The pretext task is learnt: the loss falls and rotations are told apart well above chance (25 %).
    let metrics = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    let epochs: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["stage"] == "pretrain" && r.get("rotation_accuracy").is_some())
        .collect();
    assert_eq!(epochs.len(), 4, "{metrics}");
    let loss = |i: usize| epochs[i]["loss"].as_f64().unwrap();
    assert!(loss(3) < 0.9 * loss(0), "loss {} → {}", loss(0), loss(3));
    assert!(epochs[3]["rotation_accuracy"].as_f64().unwrap() > 0.5, "{metrics}");

    // Its encoder feeds the features stage (WRN-10-2's 128-d pooled feature, not the 256 pixels) and the
    // propagation uses them.
    let (shape, _) = npy::read_f32(&out_dir.join("features/features.npy")).unwrap();
    assert_eq!(shape, vec![1000, 128]);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["propagation_accuracy"].as_f64().unwrap() > 0.3, "{summary}");
    assert!(summary["rotation_accuracy"].as_f64().unwrap() > 0.5, "{summary}");
    let config = std::fs::read_to_string(out_dir.join("config.yaml")).unwrap();
    assert!(config.contains(s(&tmp.path().join("librotation.so").canonicalize().unwrap())), "{config}");
}

fn relab_core_data_check() {
    assert!(
        Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
            || std::env::var_os("RELAB_DATA").is_some(),
        "needs Fashion-MNIST: apt-get install dataset-fashion-mnist (or set RELAB_DATA)"
    );
}

/// A library cut short (a copy interrupted, a full disk) once killed relab with SIGBUS inside `dlopen`; its ELF
/// headers are checked against the file's size first.
#[test]
fn a_truncated_library_is_refused_by_name_instead_of_crashing_relab() {
    let bytes = std::fs::read(example_library()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for cut in [1000, bytes.len() / 2] {
        let copy = tmp.path().join(format!("librelab_cut_{cut}.{}", std::env::consts::DLL_EXTENSION));
        std::fs::write(&copy, &bytes[..cut]).unwrap();
        let out = relab(&["--plugin", s(&copy), "plugins", "list"], &[]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(1), "{cut} bytes: {msg}");
        assert!(msg.contains(s(&copy)) && msg.contains(&format!("truncated: {cut} bytes")), "{msg}");
    }
}
