//! What relab promises about run folders, the stage cache and checkpoints (issue 31): it never cleans a folder it
//! did not create, one writer at a time, artifacts and checkpoints checked against the hashes written with them, a
//! cache key that follows the resolved parameters, and clear errors (never a panic) for broken inputs.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{relab as relab_in_process, require_fashion_mnist};
use relab_core::artifact::{Features, LabeledSet, Propagation, npy, npz};
use relab_core::component::{Propagator, Selector, SelectorInput, StageContext, StageKind};
use relab_core::experiment;
use relab_core::pipeline::{self, RunOptions, StageCache};
use relab_core::registry::{Origin, ParamError, PluginEntry, PluginInfo, PluginParams, Registry};
use relab_core::{Result, submit_plugin};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `relab` binary, as a user runs it.
fn relab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relab")).args(args).env("RUST_LOG", "warn").output().expect("relab runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An experiment of the binary's own plugins on a 500-image prefix of Fashion-MNIST: quick to run.
fn real_experiment(dir: &Path, name: &str, stages: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let text = format!(
        "name: {name}\nseed: 1\ndataset: {{ name: fashion-mnist, labels_per_class: 2, train_limit: 500, test_limit: \
         100 }}\nstages:\n{stages}"
    );
    fs::write(&path, text).unwrap();
    path
}

const PIXELS_NEAREST_SEED: &str = "  features: { source: pixels }\n  propagate: { plugin: nearest-seed }\n";

/// The test plugins of `common` end to end, as in `pipeline_e2e.rs`.
const EXPERIMENT: &str = "\
name: integrity
seed: 3
dataset: { name: fashion-mnist, labels_per_class: 4, train_limit: 2000, test_limit: 500 }
stages:
  pretrain: { plugin: test-projection, dim: 48 }
  features: { source: encoder }
  propagate: { plugin: test-nearest-centroid }
  select: { plugin: test-top-score, per_class: 20 }
  train: { plugin: test-centroid, epochs: 3 }
";

fn run_with(
    registry: &Registry,
    text: &str,
    out: &Path,
    cache: Option<&Path>,
    overrides: &[&str],
    resume: bool,
    stop: Option<u64>,
) -> Result<pipeline::RunOutcome> {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("integrity.yaml");
    fs::write(&exp, text).unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let runs = experiment::load(&exp, &overrides, registry).unwrap();
    let opts = RunOptions {
        out: out.to_path_buf(),
        resume,
        cache: cache.map(|c| StageCache::new(c.to_path_buf())),
        stop_after_checkpoints: stop,
    };
    pipeline::run(&runs[0], registry, &opts)
}

fn run_in_process(
    out: &Path,
    cache: Option<&Path>,
    overrides: &[&str],
    resume: bool,
    stop: Option<u64>,
) -> Result<pipeline::RunOutcome> {
    run_with(&Registry::with_static().unwrap(), EXPERIMENT, out, cache, overrides, resume, stop)
}

/// Flips one bit of the byte at `at` in place (same inode, as numpy's `np.save` to the same path writes).
fn flip_byte(path: &Path, at: u64) {
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(at)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[byte[0] ^ 0x40]).unwrap();
}

fn without_seconds(mut summary: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    summary.remove("seconds");
    summary
}

fn epochs_logged(stage_dir: &Path) -> Vec<u64> {
    fs::read_to_string(stage_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["epoch"].as_u64().unwrap())
        .collect()
}

/// Every file under `dir`, by relative path, with its content.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// ---- a run folder relab owns ----

#[test]
fn a_folder_relab_did_not_create_is_refused_and_left_as_it_was() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let exp = real_experiment(tmp.path(), "owned", PIXELS_NEAREST_SEED);
    let mine = tmp.path().join("mine");
    fs::create_dir_all(mine.join("features")).unwrap();
    fs::create_dir_all(mine.join("train/weights")).unwrap();
    fs::write(mine.join("features/notes.txt"), "my notes").unwrap();
    fs::write(mine.join("train/weights/w.bin"), [1u8, 2, 3]).unwrap();
    fs::write(mine.join("summary.json"), "{\"mine\": true}").unwrap();
    fs::write(mine.join("config.yaml"), "my: config\n").unwrap();
    let before = tree(&mine);

    let out = relab(&["run", s(&exp), "--out", s(&mine), "--no-cache"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains(s(&mine)) && msg.contains("not a relab run folder"), "{msg}");
    assert_eq!(tree(&mine), before, "relab must not touch a folder it did not create");

    // A new folder and an empty one are relab's; a folder relab made is run into again.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    for folder in [tmp.path().join("new/deeper"), empty] {
        let out = relab(&["run", s(&exp), "--out", s(&folder), "--no-cache"]);
        assert!(out.status.success(), "{}", text(&out));
        let again = relab(&["run", s(&exp), "--out", s(&folder), "--no-cache"]);
        assert!(again.status.success(), "{}", text(&again));
        assert!(folder.join("propagate/labels.npy").is_file());
    }
}

#[test]
fn an_experiment_name_must_be_a_plain_folder_name() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["'..'", "'.'", "a/b", "../up", "''", "'a\\b'"] {
        let exp = real_experiment(tmp.path(), "named", PIXELS_NEAREST_SEED);
        let body = fs::read_to_string(&exp).unwrap().replacen("name: named", &format!("name: {name}"), 1);
        fs::write(&exp, body).unwrap();
        let out = relab(&["validate", s(&exp)]);
        let msg = text(&out);
        assert!(!out.status.success(), "name {name} accepted: {msg}");
        assert!(msg.contains("named.yaml:1:7: name: ") && msg.contains("folder name"), "{name}: {msg}");
        // `relab run` refuses it before anything is written next to runs/.
        let cwd = tmp.path().join("cwd");
        fs::create_dir_all(cwd.join("runs")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_relab")).args(["run", s(&exp)]).current_dir(&cwd).output().unwrap();
        assert!(!out.status.success());
        assert_eq!(fs::read_dir(&cwd).unwrap().count(), 1, "only runs/ is there");
        assert_eq!(fs::read_dir(cwd.join("runs")).unwrap().count(), 0);
    }
}

// ---- one writer at a time ----

static GATE_ENTERED: AtomicBool = AtomicBool::new(false);
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GateParams {}

impl PluginParams for GateParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// A propagator that waits, inside its stage, until the test opens the gate: a run that is surely in progress.
struct TestGate;

impl PluginInfo for TestGate {
    const NAME: &'static str = "test-gate";
    const SUMMARY: &'static str = "test only: waits for the test, then gives every sample class 0";
    type Params = GateParams;
    fn from_params(_: GateParams) -> Result<Self, ParamError> {
        Ok(TestGate)
    }
}

impl Propagator for TestGate {
    fn propagate(&mut self, _: &mut StageContext, f: &Features, _: &LabeledSet, classes: usize) -> Result<Propagation> {
        GATE_ENTERED.store(true, Ordering::SeqCst);
        while !GATE_OPEN.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Propagation::from_scores(classes, vec![0.0; f.rows * classes]))
    }
}

submit_plugin!(propagate, TestGate);

#[test]
fn a_second_run_on_a_folder_in_use_is_refused_naming_the_process_and_the_first_ends_intact() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shared");
    let first =
        real_experiment(tmp.path(), "first", "  features: { source: pixels }\n  propagate: { plugin: test-gate }\n");
    let second = real_experiment(tmp.path(), "second", PIXELS_NEAREST_SEED);

    let (exp, dir) = (first.clone(), out.clone());
    let running = std::thread::spawn(move || relab_in_process(&["run", s(&exp), "--out", s(&dir), "--no-cache"]));
    let start = Instant::now();
    while !GATE_ENTERED.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(120), "the first run never reached its propagate stage");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = relab(&["run", s(&second), "--out", s(&out), "--no-cache"]);
    GATE_OPEN.store(true, Ordering::SeqCst);
    let msg = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{msg}");
    assert!(msg.contains(&format!("pid {}", std::process::id())) && msg.contains(s(&out)), "{msg}");
    assert_eq!(running.join().unwrap(), 0, "the first run ends");
    let config = fs::read_to_string(out.join("config.yaml")).unwrap();
    assert!(config.contains("name: first") && config.contains("test-gate"), "{config}");
    let labels = npy::read_i64(&out.join("propagate/labels.npy")).unwrap().1;
    assert_eq!(labels, vec![0; 500], "the first run's labels, not the second's");
    assert!(out.join("summary.json").is_file());
}

#[test]
fn a_lock_left_by_a_dead_process_is_taken_over() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let exp = real_experiment(tmp.path(), "takeover", PIXELS_NEAREST_SEED);
    let out = tmp.path().join("run");
    let done = relab(&["run", s(&exp), "--out", s(&out), "--no-cache"]);
    assert!(done.status.success(), "{}", text(&done));
    // What a killed relab leaves: its lock file naming a process that is gone (the kernel dropped its lock).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    fs::write(out.join(".relab-lock"), format!("{dead}\n")).unwrap();
    let again = relab(&["run", s(&exp), "--out", s(&out), "--no-cache"]);
    assert!(again.status.success(), "{}", text(&again));
}

// ---- content you can trust ----

/// The folder of the cache entry holding `file`.
fn cache_entry_with(cache: &Path, file: &str) -> PathBuf {
    fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join(file).is_file())
        .unwrap_or_else(|| panic!("no cache entry holds {file}"))
}

#[test]
fn a_corrupted_cache_entry_is_dropped_and_the_stage_recomputed() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let clean = run_in_process(&tmp.path().join("a"), Some(&cache), &[], false, None).unwrap();
    let entry = cache_entry_with(&cache, "features.npy");
    flip_byte(&entry.join("features.npy"), 1000);

    let b = tmp.path().join("b");
    let second = run_in_process(&b, Some(&cache), &[], false, None).unwrap();
    assert!(!second.reused.contains(&StageKind::Features), "the corrupt entry was used: {:?}", second.reused);
    let clean_features = fs::read(tmp.path().join("a/features/features.npy")).unwrap();
    assert!(fs::read(b.join("features/features.npy")).unwrap() == clean_features, "corrupt features were used");
    assert_eq!(without_seconds(second.summary), without_seconds(clean.summary.clone()));

    // The entry was stored again, whole: a third run reuses every stage.
    let third = run_in_process(&tmp.path().join("c"), Some(&cache), &[], false, None).unwrap();
    assert_eq!(third.reused.len(), 5, "{:?}", third.reused);
    assert_eq!(without_seconds(third.summary), without_seconds(clean.summary));
}

#[test]
fn rewriting_a_run_folder_file_in_place_poisons_neither_the_cache_nor_the_rerun() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let a = tmp.path().join("a");
    let clean = run_in_process(&a, Some(&cache), &[], false, None).unwrap();
    let features = a.join("features/features.npy");
    let original = fs::read(&features).unwrap();
    flip_byte(&features, 1000);

    // Another folder gets the cache's copy, which the edit did not reach.
    let b = tmp.path().join("b");
    let second = run_in_process(&b, Some(&cache), &[], false, None).unwrap();
    assert!(fs::read(b.join("features/features.npy")).unwrap() == original, "the edit reached the cache");
    assert_eq!(without_seconds(second.summary), without_seconds(clean.summary.clone()));

    // The edited folder itself no longer matches its record: the stage is taken again, not the edited file.
    let rerun = run_in_process(&a, Some(&cache), &[], false, None).unwrap();
    assert!(fs::read(&features).unwrap() == original, "the edited features.npy was reused");
    assert_eq!(without_seconds(rerun.summary), without_seconds(clean.summary));
}

#[test]
fn a_corrupted_checkpoint_falls_back_to_the_previous_one_and_ends_as_a_clean_run() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let whole = run_in_process(&tmp.path().join("whole"), None, &[], false, None).unwrap();
    let expected = fs::read(tmp.path().join("whole/train/centroids.npy")).unwrap();

    // A flipped byte in the weights, and a state.json that claims a later epoch than the run has.
    let flip_weights = |cut: &Path| flip_byte(&cut.join("train/checkpoint/centroids.npy"), 1000);
    let later_epoch = |cut: &Path| {
        let path = cut.join("train/checkpoint/state.json");
        let text = fs::read_to_string(&path).unwrap().replace("\"epoch\": 2", "\"epoch\": 99");
        assert!(text.contains("\"epoch\": 99"), "{text}");
        fs::write(&path, text).unwrap();
    };
    for (case, damage) in [("weights", &flip_weights as &dyn Fn(&Path)), ("state", &later_epoch)] {
        let cut = tmp.path().join(case);
        let err = run_in_process(&cut, None, &[], false, Some(2)).unwrap_err().to_string();
        assert!(err.contains("stopped after 2 checkpoints"), "{err}");
        damage(&cut);
        let resumed = run_in_process(&cut, None, &[], true, None).unwrap();
        assert!(fs::read(cut.join("train/centroids.npy")).unwrap() == expected, "{case}: not the clean run's weights");
        assert_eq!(resumed.summary["test_accuracy"], whole.summary["test_accuracy"], "{case}");
        assert_eq!(epochs_logged(&cut.join("train")), vec![1, 2, 3], "{case}: each epoch logged once");
    }

    // Both checkpoints damaged: a clear stop that says what to delete.
    let cut = tmp.path().join("both");
    run_in_process(&cut, None, &[], false, Some(2)).unwrap_err();
    flip_weights(&cut);
    flip_byte(&cut.join("train/.checkpoint.prev/centroids.npy"), 1000);
    let err = run_in_process(&cut, None, &[], true, None).unwrap_err().to_string();
    let checkpoint = cut.join("train/checkpoint");
    assert!(err.contains("centroids.npy") && err.contains(&format!("delete {}", checkpoint.display())), "{err}");
}

/// `--resume` over a changed parameter names the key and says the checkpoint is dropped, at WARN (it used to be an
/// INFO line, invisible at the default level a long run is watched at).
#[test]
fn resume_with_a_changed_parameter_warns_naming_the_key() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let stages = "  train:\n    plugin: supervised\n    backbone: wrn10_2\n    epochs: 3\n    batch_size: 10\n";
    let exp = real_experiment(tmp.path(), "changed", stages);
    let out = tmp.path().join("run");
    let cut = Command::new(env!("CARGO_BIN_EXE_relab"))
        .args(["run", s(&exp), "--out", s(&out), "--no-cache"])
        .env("RUST_LOG", "warn")
        .env("RELAB_STOP_AFTER_CHECKPOINTS", "1")
        .output()
        .unwrap();
    assert!(!cut.status.success(), "the run stops after its first checkpoint: {}", text(&cut));
    assert!(out.join("train/checkpoint/state.json").exists(), "{}", text(&cut));

    let resumed =
        relab(&["run", s(&exp), "--out", s(&out), "--no-cache", "--resume", "--set", "stages.train.epochs=2"]);
    let said = text(&resumed);
    assert!(resumed.status.success(), "{said}");
    assert!(said.contains("WARN"), "{said}");
    assert!(said.contains("params.epochs") && said.contains("checkpoint is discarded"), "{said}");
}

// ---- a cache key that changes when the result would ----

static DEFAULT_PER_CLASS: AtomicUsize = AtomicUsize::new(10);

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FirstParams {
    per_class: usize,
}

impl Default for FirstParams {
    /// A default that the test changes, as an edit of the plugin would.
    fn default() -> Self {
        FirstParams { per_class: DEFAULT_PER_CLASS.load(Ordering::SeqCst) }
    }
}

impl PluginParams for FirstParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[("per_class", "samples kept per propagated class")]
    }
}

/// Keeps the first `per_class` samples of each propagated class.
struct TestFirst {
    per_class: usize,
}

impl PluginInfo for TestFirst {
    const NAME: &'static str = "test-first";
    const SUMMARY: &'static str = "test only: the first samples of each propagated class";
    type Params = FirstParams;
    fn from_params(p: FirstParams) -> Result<Self, ParamError> {
        Ok(TestFirst { per_class: p.per_class })
    }
}

impl Selector for TestFirst {
    fn select(&mut self, _: &mut StageContext, input: SelectorInput<'_>) -> Result<LabeledSet> {
        let p = input.propagation;
        let mut set = LabeledSet::default();
        for class in 0..p.num_classes as u32 {
            let first: Vec<usize> = (0..p.len()).filter(|&i| p.labels[i] == class).take(self.per_class).collect();
            set.labels.extend(std::iter::repeat_n(class, first.len()));
            set.indices.extend(first);
        }
        Ok(set)
    }
}

submit_plugin!(select, TestFirst);

#[test]
fn a_changed_plugin_default_is_not_served_from_the_cache_and_the_run_folder_names_it() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let registry = Registry::with_static().unwrap();
    let text = "\
name: defaults
seed: 1
dataset: { name: fashion-mnist, labels_per_class: 2, train_limit: 500, test_limit: 100 }
stages:
  features: { source: pixels }
  propagate: { plugin: test-nearest-centroid }
  select: { plugin: test-first }
";
    let out = tmp.path().join("run");
    let first = run_with(&registry, text, &out, Some(&cache), &[], false, None).unwrap();
    assert!(first.reused.is_empty());
    let subset = |dir: &Path| npy::read_i64(&dir.join("select/subset.npy")).unwrap().1.len();
    let per_class_recorded = |dir: &Path| {
        let record: Value = serde_json::from_str(&fs::read_to_string(dir.join("select/stage.json")).unwrap()).unwrap();
        let config: serde_yaml::Value =
            serde_yaml::from_str(&fs::read_to_string(dir.join("config.yaml")).unwrap()).unwrap();
        (record["params"]["per_class"].as_u64(), config["stages"]["select"]["per_class"].as_u64())
    };
    let first_size = subset(&out);
    assert_eq!(per_class_recorded(&out), (Some(10), Some(10)), "the defaults that ran are written down");

    DEFAULT_PER_CLASS.store(20, Ordering::SeqCst);
    let again = run_with(&registry, text, &out, Some(&cache), &[], false, None).unwrap();
    assert_eq!(again.reused, vec![StageKind::Features, StageKind::Propagate], "select ran again");
    assert!(subset(&out) > first_size, "the new default ran");
    assert_eq!(per_class_recorded(&out), (Some(20), Some(20)));
    // A fresh folder gets the new default's result from the cache, not the old one's.
    let fresh = tmp.path().join("fresh");
    run_with(&registry, text, &fresh, Some(&cache), &[], false, None).unwrap();
    assert_eq!(subset(&fresh), subset(&out));
    assert_eq!(per_class_recorded(&fresh), (Some(20), Some(20)));
}

#[test]
fn an_edited_plugin_is_not_served_from_the_cache() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // The same plugin, built from two versions of its crate's sources.
    let build = |source: &'static str| {
        let mut registry = Registry::default();
        let entry = PluginEntry::propagate::<common::TestNearestCentroid>("0.1.0").with_source(source);
        registry.add(entry, Origin::Static { crate_name: "relab-plugin-test" }).unwrap();
        registry
    };
    let text = "\
name: edited
seed: 1
dataset: { name: fashion-mnist, labels_per_class: 2, train_limit: 500, test_limit: 100 }
stages:
  features: { source: pixels }
  propagate: { plugin: test-nearest-centroid }
";
    let out = tmp.path().join("run");
    run_with(&build("before"), text, &out, Some(&cache), &[], false, None).unwrap();
    let same = run_with(&build("before"), text, &tmp.path().join("same"), Some(&cache), &[], false, None).unwrap();
    assert_eq!(same.reused, vec![StageKind::Features, StageKind::Propagate]);
    let edited = run_with(&build("after"), text, &out, Some(&cache), &[], false, None).unwrap();
    assert_eq!(edited.reused, vec![StageKind::Features], "the edited plugin ran");
    let record: Value = serde_json::from_str(&fs::read_to_string(out.join("propagate/stage.json")).unwrap()).unwrap();
    assert_eq!(record["key"]["code"]["plugin"], "after", "stage.json names the code that ran");
}

/// What `stage.json` and `config.yaml` record is the parameters with their defaults filled in: for every
/// compiled-in plugin and every plugin stage of the experiment files, those are valid parameters again, and resolve
/// to themselves.
#[test]
fn resolved_parameters_are_valid_parameters_that_resolve_to_themselves() {
    let registry = Registry::with_static().unwrap();
    let mut cases: Vec<(String, &PluginEntry, serde_yaml::Value)> =
        registry.iter().map(|(e, _)| (format!("{} defaults", e.name), e, serde_yaml::Value::Null)).collect();
    let mut files = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")];
    while let Some(d) = stack.pop() {
        for p in fs::read_dir(&d).unwrap().flatten().map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                files.push(p);
            }
        }
    }
    let mut stages = 0;
    for file in &files {
        // Files that need a plugin library are left to tests/dynamic_plugins.rs.
        let Ok(runs) = experiment::load(file, &[], &registry) else { continue };
        for (slot, stage) in runs[0].experiment.stages.plugin_stages() {
            if let Some(name) = &stage.plugin {
                let entry = registry.get(slot, name).unwrap();
                cases.push((
                    format!("{} {name}", file.display()),
                    entry,
                    serde_yaml::Value::Mapping(stage.params.clone()),
                ));
                stages += 1;
            }
        }
    }
    assert!(stages > 10, "only {stages} plugin stages in {} files", files.len());
    for (what, entry, params) in cases {
        let Ok(resolved) = (entry.resolve)(&params) else {
            assert!((entry.validate)(&params).is_err(), "{what}: valid but not resolved");
            continue;
        };
        assert_eq!((entry.validate)(&resolved).is_ok(), (entry.validate)(&params).is_ok(), "{what}: {resolved:?}");
        assert_eq!((entry.resolve)(&resolved).unwrap(), resolved, "{what}");
    }
}

// ---- broken inputs: clear errors naming the file, never a panic ----

#[test]
fn broken_features_and_labels_files_are_refused_naming_the_file() {
    require_fashion_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let zero = tmp.path().join("zero_columns.npy");
    npy::write_f32(&zero, &[500, 0], &[]).unwrap();
    let mut values = vec![0.5f32; 500 * 4];
    values[7] = f32::NAN;
    let nan = tmp.path().join("nan_features.npy");
    npy::write_f32(&nan, &[500, 4], &values).unwrap();
    values[7] = f32::INFINITY;
    let inf = tmp.path().join("inf_features.npy");
    npy::write_f32(&inf, &[500, 4], &values).unwrap();
    let mut labels = vec![0f32; 500 * 10];
    labels[31] = f32::INFINITY;
    let inf_labels = tmp.path().join("labels_inf.npz");
    npz::write(&inf_labels, &[("arr_0", &npz::NpyArray::F32 { shape: vec![500, 10], data: labels })]).unwrap();

    let cases = [(&zero, "diffusion", "zero columns"), (&nan, "nearest-seed", "NaN"), (&inf, "nearest-seed", "inf")];
    for (file, plugin, what) in cases {
        let stages = format!("  features: {{ from: {} }}\n  propagate: {{ plugin: {plugin} }}\n", file.display());
        let exp = real_experiment(tmp.path(), "broken", &stages);
        let out = relab(&["run", s(&exp), "--out", s(&tmp.path().join("out")), "--no-cache"]);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(1), "{}: exit {:?}, {msg}", file.display(), out.status.code());
        assert!(msg.contains(s(file)) && msg.contains(what), "{msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }
    let stages = format!("  features: {{ source: pixels }}\n  propagate: {{ from: {} }}\n", inf_labels.display());
    let exp = real_experiment(tmp.path(), "broken", &stages);
    let out = relab(&["run", s(&exp), "--out", s(&tmp.path().join("out2")), "--no-cache"]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains(s(&inf_labels)) && msg.contains("inf"), "{msg}");
}

#[test]
fn data_check_exits_non_zero_when_it_reports_an_error() {
    let out = relab(&["data", "check", "imagenet"]);
    let msg = text(&out);
    assert!(msg.contains("error"), "{msg}");
    assert_eq!(out.status.code(), Some(1), "{msg}");
    let tmp = tempfile::tempdir().unwrap();
    let ok = relab(&["data", "check", "cifar10", "--root", s(tmp.path())]);
    assert!(ok.status.success(), "a dataset that is only missing is no error: {}", text(&ok));
}

#[test]
fn an_os_error_is_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = real_experiment(tmp.path(), "os", PIXELS_NEAREST_SEED);
    let file = tmp.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let out = relab(&["run", s(&exp), "--out", s(&file.join("sub")), "--no-cache"]);
    let msg = text(&out);
    assert!(!out.status.success());
    assert_eq!(msg.matches("Not a directory").count(), 1, "{msg}");
}
