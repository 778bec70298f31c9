//! End-to-end tests of [`super::load`] and [`super::load_str`] with a registry of test plugins.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::*;
use crate::artifact::{Classifier, Features, LabeledSet, Propagation};
use crate::component::{Encoder, LearnerInput, Propagator, SemiSupervisedLearner, SslMethod, StageContext, StageKind};
use crate::data::Dataset;
use crate::registry::{Origin, ParamError, PluginEntry, PluginInfo, PluginParams, StageNeed};

fn unused<T>() -> crate::Result<T> {
    Err(crate::Error::stage("test", "test plugins are never run"))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DiffusionParams {
    k: usize,
    alpha: f64,
    gamma: f64,
}

impl Default for DiffusionParams {
    fn default() -> Self {
        DiffusionParams { k: 200, alpha: 0.99, gamma: 3.0 }
    }
}

impl PluginParams for DiffusionParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[("k", "neighbours"), ("alpha", "damping"), ("gamma", "power")]
    }
}

struct Diffusion;

impl PluginInfo for Diffusion {
    const NAME: &'static str = "diffusion";
    const SUMMARY: &'static str = "test propagator";
    type Params = DiffusionParams;
    fn from_params(params: DiffusionParams) -> Result<Self, ParamError> {
        if !(0.0..1.0).contains(&params.alpha) {
            return Err(ParamError {
                path: vec!["alpha".into()],
                message: format!("must be in [0, 1), got {}", params.alpha),
                known_keys: vec![],
            });
        }
        Ok(Diffusion)
    }
}

impl Propagator for Diffusion {
    fn propagate(
        &mut self,
        _: &mut StageContext,
        _: &Features,
        _: &LabeledSet,
        _: usize,
    ) -> crate::Result<Propagation> {
        unused()
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct NoParams {}

impl PluginParams for NoParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

struct NearestSeed;

impl PluginInfo for NearestSeed {
    const NAME: &'static str = "nearest-seed";
    const SUMMARY: &'static str = "test propagator";
    type Params = NoParams;
    fn from_params(_: NoParams) -> Result<Self, ParamError> {
        Ok(NearestSeed)
    }
}

impl Propagator for NearestSeed {
    fn propagate(
        &mut self,
        _: &mut StageContext,
        _: &Features,
        _: &LabeledSet,
        _: usize,
    ) -> crate::Result<Propagation> {
        unused()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LearnerParams {
    epochs: usize,
    warmup_epochs: usize,
    init: String,
    repropagate_after: Vec<usize>,
}

impl Default for LearnerParams {
    fn default() -> Self {
        LearnerParams { epochs: 400, warmup_epochs: 200, init: "none".into(), repropagate_after: Vec::new() }
    }
}

impl PluginParams for LearnerParams {
    fn help() -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn needs(&self) -> Vec<StageNeed> {
        let mut needs = Vec::new();
        if self.init == "pretrain" {
            needs.push(StageNeed::new(
                StageKind::Pretrain,
                "init",
                "init: pretrain needs the pretrain stage's encoder",
            ));
        }
        if !self.repropagate_after.is_empty() {
            let why = "repropagate_after needs a propagate stage run by a plugin";
            needs.push(StageNeed::new(StageKind::Propagate, "repropagate_after", why).run_by_plugin());
        }
        needs
    }
}

struct PseudoLabel;

impl PluginInfo for PseudoLabel {
    const NAME: &'static str = "pseudo-label";
    const SUMMARY: &'static str = "test learner";
    type Params = LearnerParams;
    fn from_params(_: LearnerParams) -> Result<Self, ParamError> {
        Ok(PseudoLabel)
    }
}

impl SemiSupervisedLearner for PseudoLabel {
    fn train(&mut self, _: &mut StageContext, _: LearnerInput<'_, '_>) -> crate::Result<Classifier> {
        unused()
    }
}

struct Remix;

impl PluginInfo for Remix {
    const NAME: &'static str = "remixmatch";
    const SUMMARY: &'static str = "test learner";
    type Params = LearnerParams;
    fn from_params(_: LearnerParams) -> Result<Self, ParamError> {
        Ok(Remix)
    }
}

impl SemiSupervisedLearner for Remix {
    fn train(&mut self, _: &mut StageContext, _: LearnerInput<'_, '_>) -> crate::Result<Classifier> {
        unused()
    }
}

struct Imix;

impl PluginInfo for Imix {
    const NAME: &'static str = "imix";
    const SUMMARY: &'static str = "test SSL method";
    type Params = NoParams;
    fn from_params(_: NoParams) -> Result<Self, ParamError> {
        Ok(Imix)
    }
}

impl SslMethod for Imix {
    fn pretrain(&mut self, _: &mut StageContext, _: &Dataset) -> crate::Result<Box<dyn Encoder>> {
        unused()
    }
    fn load_encoder(&self, _: &mut StageContext, _: &Path) -> crate::Result<Box<dyn Encoder>> {
        unused()
    }
}

fn registry() -> Registry {
    let mut registry = Registry::default();
    let test = Origin::Static { crate_name: "test" };
    registry.add(PluginEntry::propagate::<Diffusion>("0"), test.clone()).unwrap();
    registry.add(PluginEntry::propagate::<NearestSeed>("0"), test.clone()).unwrap();
    registry.add(PluginEntry::train::<PseudoLabel>("0"), test.clone()).unwrap();
    registry.add(PluginEntry::train::<Remix>("0"), test.clone()).unwrap();
    registry.add(PluginEntry::pretrain::<Imix>("0"), test).unwrap();
    registry
}

fn runs(text: &str, overrides: &[&str]) -> Result<Vec<ResolvedRun>, ConfigError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_str(text, Path::new("experiments/x.yaml"), &overrides, &registry())
}

fn error(text: &str, overrides: &[&str]) -> String {
    runs(text, overrides).unwrap_err().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

const DESIGN: &str = "\
name: fmnist-40
seed: 1
backend: cpu
dataset: { name: fashion-mnist, labels_per_class: 4 }
stages:
  pretrain:  { plugin: imix }
  features:  { source: encoder }
  propagate: { plugin: diffusion, k: 200, alpha: 0.9, gamma: 3 }
  train:     { plugin: pseudo-label, warmup_epochs: 200, epochs: 400 }
sweep:
  seed: [1, 2, 3]
  stages.propagate.k: [50, 200]
  stages.train.plugin: [pseudo-label, remixmatch]
";

#[test]
fn parses_the_design_example() {
    let runs = runs(DESIGN, &[]).unwrap();
    assert_eq!(runs.len(), 12);
    let run = &runs[3];
    assert_eq!(run.label, "seed=1,stages.propagate.k=200,stages.train.plugin=remixmatch");
    assert_eq!(run.folder, run.label);
    let e = &run.experiment;
    assert_eq!((e.name.as_deref(), e.seed, e.backend), (Some("fmnist-40"), 1, BackendChoice::Cpu));
    assert_eq!(e.dataset.labels_per_class, Some(4));
    let propagate = e.stages.propagate.as_ref().unwrap();
    assert_eq!(propagate.plugin.as_deref(), Some("diffusion"));
    assert_eq!(propagate.params.get("k"), Some(&Value::from(200)));
    assert_eq!(e.stages.train.as_ref().unwrap().plugin.as_deref(), Some("remixmatch"));
    assert!(run.value.get("sweep").is_none());
    assert_eq!(serde_yaml::from_value::<Experiment>(run.value.clone()).unwrap(), run.experiment);
    let seeds: Vec<u64> = runs.iter().map(|r| r.experiment.seed).collect();
    assert_eq!(seeds, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
}

#[test]
fn no_sweep_one_run_named_after_the_file() {
    let runs = runs("dataset: {name: mnist}\n", &[]).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].label.as_str(), runs[0].folder.as_str()), ("", ""));
    assert_eq!(runs[0].experiment.name.as_deref(), Some("x"));
    assert_eq!(runs[0].value, serde_yaml::from_str::<Value>("name: x\ndataset: {name: mnist}").unwrap());
    assert_eq!(runs[0].experiment.seed, 1);
}

#[test]
fn extends_two_levels_with_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::absolute(dir.path()).unwrap();
    write(&root, "data/subset.npz", "");
    write(
        &root,
        "experiments/base/fmnist.yaml",
        "seed: 3\ndataset: {name: fashion-mnist, root: ../../data, labels_per_class: 4}\n\
         stages:\n  propagate: {plugin: diffusion, k: 200, alpha: 0.9}\n  train: {plugin: pseudo-label, epochs: 10}\n",
    );
    write(
        &root,
        "experiments/ablations/mid.yaml",
        "extends: ../base/fmnist.yaml\nstages:\n  propagate: {k: 50}\n  select: {from: ../../data/subset.npz}\n",
    );
    let top = write(
        &root,
        "experiments/ablations/deep/top.yaml",
        "extends: ../mid.yaml\ndataset: {labels_per_class: 10}\nstages:\n  propagate: {gamma: 2}\n",
    );
    let runs = load(&top, &[], &registry()).unwrap();
    assert_eq!(runs.len(), 1);
    let e = &runs[0].experiment;
    assert_eq!(e.name.as_deref(), Some("top"));
    assert_eq!(e.seed, 3);
    assert_eq!(e.dataset.name, "fashion-mnist");
    assert_eq!(e.dataset.labels_per_class, Some(10));
    assert_eq!(e.dataset.root.as_deref(), Some(root.join("data").as_path()));
    assert_eq!(e.stages.select.as_ref().unwrap().from.as_deref(), Some(root.join("data/subset.npz").as_path()));
    let propagate = e.stages.propagate.as_ref().unwrap();
    let params: Value = serde_yaml::from_str("{k: 50, alpha: 0.9, gamma: 2}").unwrap();
    assert_eq!(Value::Mapping(propagate.params.clone()), params);
    assert_eq!(runs[0].value.get("extends"), None);

    // An error in an inherited value points into the file that wrote it.
    write(&root, "experiments/base/fmnist.yaml", "seed: three\ndataset: {name: fashion-mnist}\n");
    let e = load(&top, &[], &registry()).unwrap_err();
    let base = root.join("experiments/base/fmnist.yaml");
    assert_eq!(
        e.to_string(),
        format!("{}:1:7: seed: wrong type: expected a non-negative integer, found a string \"three\"", base.display())
    );
}

#[test]
fn extends_cycle_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", "extends: b.yaml\ndataset: {name: mnist}\n");
    let b = write(dir.path(), "b.yaml", "extends: c.yaml\n");
    write(dir.path(), "c.yaml", "extends: ./a.yaml\n");
    let e = load(&a, &[], &registry()).unwrap_err();
    let c = dir.path().join("c.yaml");
    assert!(matches!(*e.kind, ConfigErrorKind::ExtendsCycle { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:1:10: extends: cycle: {} -> {} -> {} -> {}",
            c.display(),
            a.display(),
            b.display(),
            c.display(),
            a.display()
        )
    );

    let e = runs("extends: [base/none.yaml]\n", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "experiments/x.yaml:1:11: extends: file `experiments/base/none.yaml` not found (referenced by experiments/x.yaml)"
    );
    let e = load(&dir.path().join("nope.yaml"), &[], &registry()).unwrap_err();
    assert!(e.to_string().starts_with("file not found: "), "{e}");
}

#[test]
fn set_overrides_are_typed_and_create_keys() {
    let text = "dataset: {name: mnist}\nstages:\n  propagate: {plugin: diffusion}\n";
    let runs = runs(
        text,
        &[
            "stages.propagate.k=50",
            "dataset.labels_per_class=10",
            "stages.train.plugin=pseudo-label",
            "backend=wgpu",
            "name=~",
        ],
    )
    .unwrap();
    let e = &runs[0].experiment;
    assert_eq!(e.stages.propagate.as_ref().unwrap().params.get("k"), Some(&Value::from(50)));
    assert_eq!(e.dataset.labels_per_class, Some(10));
    assert_eq!(e.stages.train.as_ref().unwrap().plugin.as_deref(), Some("pseudo-label"));
    assert_eq!(e.backend, BackendChoice::Wgpu);
    assert_eq!(e.name.as_deref(), Some("x"));

    // Errors in values given on the command line name the override.
    assert_eq!(
        error(text, &["stages.propagate.k=fifty"]),
        "--set stages.propagate.k=fifty: stages.propagate.k: wrong type: expected a non-negative integer, found a string \"fifty\""
    );
    assert_eq!(
        error(text, &["sed=2"]),
        "--set sed=2: sed: unknown key; expected one of name, seed, backend, device, dataset, stages, plugins, launcher, slurm; did you mean `seed`?"
    );
    assert!(error(text, &["nonsense"]).starts_with("--set nonsense: bad override: no `=`"));
}

#[test]
fn set_wins_over_sweep() {
    let text = "dataset: {name: mnist}\nsweep:\n  seed: [1, 2]\n  dataset.labels_per_class: [4, 10]\n";
    let all = runs(text, &[]).unwrap();
    assert_eq!(all.len(), 4);
    let fixed = runs(text, &["seed=7"]).unwrap();
    assert_eq!(fixed.len(), 2);
    assert!(fixed.iter().all(|r| r.experiment.seed == 7));
    assert_eq!(fixed[1].label, "dataset.labels_per_class=10");
    let swept = runs(text, &["sweep.seed=[5, 6, 7]"]).unwrap();
    assert_eq!(swept.len(), 6);
    assert_eq!(swept[5].label, "seed=7,dataset.labels_per_class=10");
}

#[test]
fn sweep_errors_point_at_the_sweep() {
    let text =
        "dataset: {name: mnist}\nstages:\n  propagate: {plugin: diffusion}\nsweep:\n  stages.propagate.kk: [1, 2]\n";
    assert_eq!(
        error(text, &[]),
        "experiments/x.yaml:5:3: stages.propagate.kk: unknown key; expected one of k, alpha, gamma; did you mean `k`? \
         (sweep point stages.propagate.kk=1)"
    );
    let text = "dataset: {name: mnist}\nsweep:\n  seed: [1, x]\n";
    assert_eq!(
        error(text, &[]),
        "experiments/x.yaml:3:13: seed: wrong type: expected a non-negative integer, found a string \"x\" (sweep point seed=x)"
    );
    assert_eq!(
        error("dataset: {name: mnist}\nsweep:\n  seed: 3\n", &[]),
        "experiments/x.yaml:3:3: sweep.seed: bad sweep: expected a list of values, found an integer `3`; write `[3]` for a single value"
    );
}

#[test]
fn unknown_top_level_key_with_suggestion_and_position() {
    let text = "name: x\ndataset: {name: mnist}\n\nsed: 2\n";
    assert_eq!(
        error(text, &[]),
        "experiments/x.yaml:4:1: sed: unknown key; expected one of name, seed, backend, device, dataset, stages, plugins, launcher, slurm; did you mean `seed`?"
    );
    let text = "dataset:\n  name: mnist\n  labels_per_clas: 4\n";
    assert_eq!(
        error(text, &[]),
        "experiments/x.yaml:3:3: dataset.labels_per_clas: unknown key; expected one of name, root, labels_per_class, \
         labels_seed, seeds, channels, pad_to, resize, train_limit, test_limit; did you mean `labels_per_class`?"
    );
    let text = "dataset: {name: mnist}\nstages:\n  propogate: {plugin: diffusion}\n";
    let e = error(text, &[]);
    assert!(e.starts_with("experiments/x.yaml:3:3: stages.propogate: unknown key;"), "{e}");
    assert!(e.ends_with("did you mean `propagate`?"), "{e}");
}

#[test]
fn wrong_types_and_values() {
    assert_eq!(
        error("seed: abc\ndataset: {name: mnist}\n", &[]),
        "experiments/x.yaml:1:7: seed: wrong type: expected a non-negative integer, found a string \"abc\""
    );
    assert_eq!(
        error("dataset: {name: mnist}\nbackend: gpu\n", &[]),
        "experiments/x.yaml:2:10: backend: unknown value `gpu`; expected one of cpu, wgpu, cuda, auto; did you mean `wgpu`?"
    );
    assert_eq!(
        error("dataset: [mnist]\n", &[]),
        "experiments/x.yaml:1:10: dataset: wrong type: expected a mapping (DatasetConfig), found a list"
    );
    assert_eq!(error("seed: 2\n", &[]), "experiments/x.yaml: dataset: missing required key");
    assert_eq!(error("dataset:\n  root: /x\n", &[]), "experiments/x.yaml:1:1: dataset.name: missing required key");
    let e = error("a: [1\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:2:1: YAML syntax error: "), "{e}");
}

#[test]
fn unknown_plugin_lists_known_names() {
    let text = "dataset: {name: mnist}\nstages:\n  propagate:\n    plugin: difusion\n";
    assert_eq!(
        error(text, &[]),
        "experiments/x.yaml:4:13: stages.propagate.plugin: unknown propagator `difusion` for stage `propagate`; \
         known: diffusion, nearest-seed; did you mean `diffusion`?"
    );
    let text = "dataset: {name: mnist}\nstages:\n  propagate: {plugin: pseudo-label}\n";
    let e = error(text, &[]);
    assert!(e.contains("(`pseudo-label` is a semi-supervised learner for stage `train`)"), "{e}");
    let e = error("dataset: {name: mnist}\nstages:\n  select: {plugin: small-loss}\n", &[]);
    assert!(e.ends_with("no plugin of this kind is registered"), "{e}");
}

#[test]
fn plugin_parameter_errors_point_at_the_key() {
    let text = "dataset: {name: mnist}\nstages:\n  propagate:\n    plugin: diffusion\n    kk: 3\n";
    let e = runs(text, &[]).unwrap_err();
    assert!(matches!(&*e.kind, ConfigErrorKind::UnknownKey { suggestion: Some(s), .. } if s == "k"));
    assert_eq!(
        e.to_string(),
        "experiments/x.yaml:5:5: stages.propagate.kk: unknown key; expected one of k, alpha, gamma; did you mean `k`?"
    );
    let text = "dataset: {name: mnist}\nstages:\n  propagate:\n    plugin: diffusion\n    k: many\n";
    assert_eq!(
        error(text, &[]),
        "experiments/x.yaml:5:8: stages.propagate.k: wrong type: expected a non-negative integer, found a string \"many\""
    );
    // A plugin's own check (from_params) is positioned at the key it names.
    let text = "dataset: {name: mnist}\nstages:\n  propagate: {plugin: diffusion, alpha: 1.5}\n";
    assert_eq!(error(text, &[]), "experiments/x.yaml:3:41: stages.propagate.alpha: must be in [0, 1), got 1.5");
}

#[test]
fn stage_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.npy", "");
    let exp = dir.path().join("x.yaml");
    let load = |text: &str| load_str(text, &exp, &[], &registry());
    let shown = exp.display();

    let e = load("dataset: {name: mnist}\nstages:\n  propagate: {k: 3}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{shown}:3:3: stages.propagate: needs `plugin:` (a propagator; known: diffusion, nearest-seed) or `from:` \
             (a file or stage folder holding the stage's output)"
        )
    );
    let e = load("dataset: {name: mnist}\nstages:\n  propagate: {plugin: diffusion, from: p.npy}\n").unwrap_err();
    assert!(e.to_string().starts_with(&format!("{shown}:3:34: stages.propagate: both `plugin` and `from`")), "{e}");
    let e = load("dataset: {name: mnist}\nstages:\n  propagate: {from: p.npy, k: 3}\n").unwrap_err();
    assert!(e.to_string().contains("`k` is a plugin parameter"), "{e}");

    let runs = load("dataset: {name: mnist}\nstages:\n  propagate: {from: p.npy, k: ~, plugin: ~}\n").unwrap();
    assert_eq!(runs[0].experiment.stages.propagate.as_ref().unwrap().from.as_deref(), Some(file.as_path()));

    let e = load("dataset: {name: mnist}\nstages:\n  features: {from: none.npy}\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{shown}:3:20: stages.features.from: file not found: {}", dir.path().join("none.npy").display())
    );
}

#[test]
fn more_messages() {
    let mnist = "dataset: {name: mnist}\n";
    let cases = [
        (
            "stages:\n  propagate: {plugin: 3}\n",
            "experiments/x.yaml:3:23: stages.propagate.plugin: wrong type: expected a string, found an integer `3`",
        ),
        (
            "stages:\n  features: {sorce: pixels}\n",
            "experiments/x.yaml:3:14: stages.features.sorce: unknown key; expected one of source, output, from, pca; did you mean `source`?",
        ),
        (
            "stages:\n  features: {source: pixel}\n",
            "experiments/x.yaml:3:22: stages.features.source: unknown value `pixel`; expected one of encoder, pixels; did you mean `pixels`?",
        ),
        (
            "seed: -1\n",
            "experiments/x.yaml:2:7: seed: invalid value: expected a non-negative integer, found an integer `-1`",
        ),
        (
            "seed: 1\nseed: 2\n",
            "experiments/x.yaml:3:1: seed: YAML syntax error: duplicate key (a key may appear once per mapping)",
        ),
        (
            "stages:\n  train: {plugin: pseudo-label, epochs: 3.5}\n",
            "experiments/x.yaml:3:41: stages.train.epochs: wrong type: expected a non-negative integer, found a number `3.5`",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(&format!("{mnist}{text}"), &[]), expected);
    }
    // A stage created by an override is reported at the override.
    assert_eq!(
        error(mnist, &["stages.propagate.k=1"]),
        "--set stages.propagate.k=1: stages.propagate: needs `plugin:` (a propagator; known: diffusion, \
         nearest-seed) or `from:` (a file or stage folder holding the stage's output)"
    );
    // Anchors, aliases and merge keys work.
    let runs = runs("base: &b {name: mnist, labels_per_class: 2}\n", &[]).unwrap_err();
    assert!(runs.to_string().starts_with("experiments/x.yaml:1:1: base: unknown key"), "{runs}");
    let text = "dataset: &d {name: mnist}\nstages:\n  <<: {propagate: {plugin: nearest-seed}}\n";
    let run = &super::tests::runs(text, &[]).unwrap()[0];
    assert_eq!(run.experiment.stages.propagate.as_ref().unwrap().plugin.as_deref(), Some("nearest-seed"));
}

#[test]
fn plugin_libraries_are_relative_to_their_file_and_must_be_loaded_before_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("base")).unwrap();
    std::fs::write(root.join("base/librot.so"), b"").unwrap();
    std::fs::write(root.join("base/base.yaml"), "plugins: [librot.so]\ndataset: { name: fashion-mnist }\n").unwrap();
    let exp = root.join("exp.yaml");
    std::fs::write(&exp, "extends: base/base.yaml\n").unwrap();

    assert_eq!(plugin_libraries(&exp, &[]).unwrap(), vec![root.join("base/librot.so")]);
    // A --set path is relative to the working directory and replaces the list.
    assert_eq!(
        plugin_libraries(&exp, &["plugins=[/opt/libx.so]".into()]).unwrap(),
        vec![PathBuf::from("/opt/libx.so")]
    );

    // A library the registry has not loaded is refused at its value, so are missing files.
    let err = load(&exp, &[], &registry()).unwrap_err().to_string();
    assert!(err.contains("base.yaml:1:") && err.contains("plugins.0") && err.contains("not loaded"), "{err}");
    let err = load(&exp, &["plugins=[gone.so]".into()], &registry()).unwrap_err().to_string();
    assert!(err.contains("plugins.0") && err.contains("gone.so"), "{err}");
}

#[test]
fn an_unknown_dataset_is_refused_at_its_name_with_the_nearest_known_one() {
    let e = runs("seed: 1\ndataset: {name: cifar11}\n", &[]).unwrap_err();
    assert!(matches!(&*e.kind, ConfigErrorKind::UnknownValue { suggestion: Some(s), .. } if s == "cifar10"), "{e}");
    assert_eq!(
        e.to_string(),
        "experiments/x.yaml:2:17: dataset.name: unknown value `cifar11`; expected one of fashion-mnist, mnist, \
         cifar10, cifar100, miniimagenet; did you mean `cifar10`?"
    );
    // A known dataset validates whether or not its files are on this machine (the CLI makes that a note).
    assert!(runs("dataset: {name: miniimagenet, root: /no/such/folder}\n", &[]).is_ok());
    // Sweeps and overrides are checked too.
    let e = error("dataset: {name: mnist}\n", &["dataset.name=fashion_mnist"]);
    assert!(e.starts_with("--set dataset.name=fashion_mnist: dataset.name: unknown value"), "{e}");
    assert!(e.ends_with("did you mean `fashion-mnist`?"), "{e}");
}

#[test]
fn dataset_counts_must_be_positive() {
    for key in ["labels_per_class", "channels", "pad_to", "resize", "train_limit", "test_limit"] {
        let text = format!("dataset:\n  name: mnist\n  {key}: 0\n");
        let e = error(&text, &[]);
        let column = key.len() + 5;
        assert_eq!(e, format!("experiments/x.yaml:3:{column}: dataset.{key}: must be at least 1, found 0"));
        assert!(runs(&text.replace(": 0", ": 1"), &[]).is_ok(), "{key}: 1");
    }
    let e = error("dataset: {name: mnist}\nstages:\n  features: {source: pixels, pca: 0}\n", &[]);
    assert_eq!(e, "experiments/x.yaml:3:35: stages.features.pca: must be at least 1, found 0");
    let e = error("dataset: {name: mnist}\nsweep:\n  dataset.labels_per_class: [4, 0]\n", &[]);
    assert!(
        e.contains("dataset.labels_per_class: must be at least 1")
            && e.ends_with("(sweep point dataset.labels_per_class=0)"),
        "{e}"
    );
}

#[test]
fn a_stage_resize_is_read_beside_the_plugin_and_checked_where_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "select/stage.json", "");
    let exp = dir.path().join("x.yaml");
    let load = |text: &str| load_str(text, &exp, &[], &registry());
    let shown = exp.display();
    let head = "dataset: {name: mnist, resize: 16}\nstages:\n";

    // Not a parameter of the learner: the plugin never sees it.
    let runs = load(&format!("{head}  train: {{plugin: pseudo-label, resize: 28}}\n")).unwrap();
    let train = runs[0].experiment.stages.train.as_ref().unwrap();
    assert_eq!(train.resize, Some(28));
    assert!(train.params.is_empty(), "{:?}", train.params);

    let e = load(&format!("{head}  train: {{plugin: pseudo-label, resize: 0}}\n")).unwrap_err();
    assert_eq!(e.to_string(), format!("{shown}:3:41: stages.train.resize: must be at least 1, found 0"));
    let e = load(&format!("{head}  propagate: {{plugin: diffusion, resize: 28}}\n")).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "{shown}:3:42: stages.propagate.resize: the propagate stage reads features, not images"
        )),
        "{e}"
    );
    let e = load(&format!("{head}  select: {{from: select, resize: 28}}\n")).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{shown}:3:34: stages.select.resize: this stage is read from a file")),
        "{e}"
    );
}

#[test]
fn a_labels_seed_needs_a_draw_to_seed() {
    let e = error("dataset:\n  name: mnist\n  seeds: s.npy\n  labels_seed: 3\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:4:16: dataset.labels_seed: seeds the balanced draw"), "{e}");
    let swept =
        runs("dataset: {name: mnist, labels_per_class: 4}\nseed: 2\nsweep:\n  dataset.labels_seed: [1, 2]\n", &[]);
    let draws: Vec<_> = swept.unwrap().iter().map(|r| (r.experiment.seed, r.experiment.dataset.labels_seed)).collect();
    assert_eq!(draws, [(2, Some(1)), (2, Some(2))]);
}

#[test]
fn stage_needs_declared_by_the_plugin_are_checked_at_the_key_that_asks() {
    let mnist = "dataset: {name: mnist}\n";
    // init: pretrain without a pretrain stage.
    let text = format!("{mnist}stages:\n  train:\n    plugin: pseudo-label\n    init: pretrain\n");
    let e = runs(&text, &[]).unwrap_err();
    assert!(matches!(&*e.kind, ConfigErrorKind::MissingStage { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "experiments/x.yaml:5:5: stages.train.init: init: pretrain needs the pretrain stage's encoder, but this \
         experiment has no pretrain stage (stages.pretrain)"
    );
    // With one, run by a plugin or read from a stage folder, it validates.
    let dir = tempfile::tempdir().unwrap();
    assert!(runs(&format!("{text}  pretrain: {{plugin: imix}}\n"), &[]).is_ok());
    let from = format!("{text}  pretrain: {{from: {}}}\n", dir.path().display());
    assert!(runs(&from, &[]).is_ok());
    // A need set by --set is reported at the override.
    let e = error(&format!("{mnist}stages:\n  train: {{plugin: remixmatch}}\n"), &["stages.train.init=pretrain"]);
    assert!(e.starts_with("--set stages.train.init=pretrain: stages.train.init: init: pretrain needs"), "{e}");

    // repropagate_after needs a propagate stage run by a plugin: none, or one read with `from:`, is refused.
    let text = format!("{mnist}stages:\n  train: {{plugin: pseudo-label, repropagate_after: [1]}}\n");
    let e = error(&text, &[]);
    assert!(e.starts_with("experiments/x.yaml:3:33: stages.train.repropagate_after: repropagate_after needs"), "{e}");
    assert!(e.ends_with("but this experiment has no propagate stage (stages.propagate)"), "{e}");
    let labels = dir.path().join("labels.npy");
    std::fs::write(&labels, b"").unwrap();
    let from = format!("{text}  features: {{source: pixels}}\n  propagate: {{from: {}}}\n", labels.display());
    let e = error(&from, &[]);
    assert!(
        e.contains("stages.train.repropagate_after: ") && e.contains("stages.propagate is read from a file"),
        "{e}"
    );
    let plugin = format!("{text}  features: {{source: pixels}}\n  propagate: {{plugin: diffusion}}\n");
    assert!(runs(&plugin, &[]).is_ok());
    // Each sweep point is checked on its own.
    let swept =
        format!("{mnist}stages:\n  train: {{plugin: pseudo-label}}\nsweep:\n  stages.train.init: [none, pretrain]\n");
    let e = error(&swept, &[]);
    assert!(
        e.contains("stages.train.init: init: pretrain needs")
            && e.ends_with("(sweep point stages.train.init=pretrain)"),
        "{e}"
    );
}

#[test]
fn host_stage_needs_are_checked_too() {
    let e = error("dataset: {name: mnist}\nstages:\n  features: {source: encoder}\n", &[]);
    assert!(
        e.starts_with(
            "experiments/x.yaml:3:14: stages.features.source: features come from the pretrain stage's encoder"
        ),
        "{e}"
    );
    assert!(e.ends_with("no pretrain stage (stages.pretrain)"), "{e}");
    assert!(runs("dataset: {name: mnist}\nstages:\n  features: {source: pixels}\n", &[]).is_ok());
}

#[test]
fn the_schema_s_stages_are_stage_kind_s() {
    let stage = PluginStage { plugin: Some("x".into()), ..PluginStage::default() };
    let all = Stages {
        pretrain: Some(stage.clone()),
        features: Some(FeaturesStage::default()),
        propagate: Some(stage.clone()),
        select: Some(stage.clone()),
        train: Some(stage),
    };
    let Value::Mapping(keys) = serde_yaml::to_value(&all).unwrap() else { panic!() };
    let keys: Vec<&str> = keys.keys().filter_map(Value::as_str).collect();
    assert_eq!(keys, StageKind::ALL.map(StageKind::name));
    let slots: Vec<StageKind> = all.plugin_stages().map(|(kind, _)| kind).collect();
    assert_eq!(slots, StageKind::SLOTS);
    assert!(StageKind::ALL.into_iter().all(|kind| all.has(kind)));
    assert!(!Stages::default().has(StageKind::Features));
}

#[test]
fn launcher_and_slurm_settings_are_read_checked_and_positioned() {
    let text = "dataset: {name: mnist}\nlauncher: local\n";
    assert_eq!(runs(text, &[]).unwrap()[0].experiment.launcher, Some(Launcher::Local));
    assert_eq!(runs("dataset: {name: mnist}\n", &[]).unwrap()[0].experiment.launcher, None);
    let e = error("dataset: {name: mnist}\nlauncher: pbs\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:2:11: launcher:") && e.contains("slurm"), "{e}");

    let text = "dataset: {name: mnist}\nlauncher: slurm\nslurm:\n  partition: gpu\n  cpus: 4\n  parallel: 2\n  \
                sbatch: [--constraint=a100]\n  setup: [module load cuda]\n";
    let experiment = &runs(text, &[]).unwrap()[0].experiment;
    assert_eq!(experiment.launcher, Some(Launcher::Slurm));
    let slurm = experiment.slurm.as_ref().unwrap();
    assert_eq!((slurm.partition.as_deref(), slurm.cpus, slurm.parallel), (Some("gpu"), Some(4), Some(2)));
    assert_eq!((slurm.signal.as_str(), slurm.grace, slurm.timeout_requeues), ("USR2", 120, 3));
    assert_eq!(
        (&slurm.sbatch[..], &slurm.setup[..]),
        (&["--constraint=a100".to_string()][..], &["module load cuda".to_string()][..])
    );
    // `--set` reaches the settings like any key.
    let set = runs(text, &["slurm.partition=debug"]).unwrap();
    assert_eq!(set[0].experiment.slurm.as_ref().unwrap().partition.as_deref(), Some("debug"));

    let e = error("dataset: {name: mnist}\nslurm:\n  partiton: gpu\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:3:3: slurm.partiton: unknown key") && e.contains("`partition`"), "{e}");
    let e = error("dataset: {name: mnist}\nslurm: {signal: USR3}\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:2:17: slurm.signal:") && e.contains("USR2"), "{e}");
    let e = error("dataset: {name: mnist}\nslurm: {cpus: 0}\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:2:15: slurm.cpus: must be at least 1, found 0"), "{e}");
    let e = error("dataset: {name: mnist}\nslurm:\n  sbatch: [--mail-type=END, mail-user=x]\n", &[]);
    assert!(e.starts_with("experiments/x.yaml:3:29: slurm.sbatch.1:") && e.contains("not an sbatch option"), "{e}");
}
