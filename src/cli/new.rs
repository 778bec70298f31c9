//! `relab new SLOT NAME`: a plugin crate scaffolded from the slot's template (plugins/examples/template-*), with its
//! names replaced, linked into the binary through the workspace's `[dependencies]`. The copy builds and passes its
//! tests untouched, as the template does in CI.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NewSlot {
    /// A self-supervised method and its encoder (template: PCA of the normalised pixels).
    Pretrain,
    /// A propagator (template: nearest class centroid of the seeds).
    Propagate,
    /// A selector (template: per class, the seeds then the most confident samples).
    Select,
    /// A semi-supervised learner (template: entropy minimisation on core's training loop).
    Train,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The slot the plugin fills.
    slot: NewSlot,
    /// The plugin's name as experiments write it (`plugin: NAME`): lowercase letters, digits and dashes.
    name: String,
    /// The workspace to add it to (the folder holding the root Cargo.toml and plugins/).
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

/// A template: its files, and the names in them that become the new plugin's.
struct Template {
    crate_name: &'static str,
    plugin_name: &'static str,
    type_name: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const LEARNER: Template = Template {
    crate_name: "relab-template-learner",
    plugin_name: "entropy-min",
    type_name: "EntropyMin",
    files: &[
        ("Cargo.toml", include_str!("../../plugins/examples/template-learner/Cargo.toml")),
        ("src/lib.rs", include_str!("../../plugins/examples/template-learner/src/lib.rs")),
        ("tests/kit.rs", include_str!("../../plugins/examples/template-learner/tests/kit.rs")),
    ],
};

const PROPAGATOR: Template = Template {
    crate_name: "relab-template-propagator",
    plugin_name: "centroid",
    type_name: "Centroid",
    files: &[
        ("Cargo.toml", include_str!("../../plugins/examples/template-propagator/Cargo.toml")),
        ("src/lib.rs", include_str!("../../plugins/examples/template-propagator/src/lib.rs")),
        ("tests/kit.rs", include_str!("../../plugins/examples/template-propagator/tests/kit.rs")),
    ],
};

const SSL: Template = Template {
    crate_name: "relab-template-ssl",
    plugin_name: "pca-features",
    type_name: "PcaFeatures",
    files: &[
        ("Cargo.toml", include_str!("../../plugins/examples/template-ssl/Cargo.toml")),
        ("src/lib.rs", include_str!("../../plugins/examples/template-ssl/src/lib.rs")),
        ("tests/kit.rs", include_str!("../../plugins/examples/template-ssl/tests/kit.rs")),
    ],
};

const SELECTOR: Template = Template {
    crate_name: "relab-template-selector",
    plugin_name: "most-confident",
    type_name: "MostConfident",
    files: &[
        ("Cargo.toml", include_str!("../../plugins/examples/template-selector/Cargo.toml")),
        ("src/lib.rs", include_str!("../../plugins/examples/template-selector/src/lib.rs")),
        ("tests/kit.rs", include_str!("../../plugins/examples/template-selector/tests/kit.rs")),
    ],
};

pub fn new(args: NewArgs) -> anyhow::Result<()> {
    let template = match args.slot {
        NewSlot::Pretrain => &SSL,
        NewSlot::Propagate => &PROPAGATOR,
        NewSlot::Select => &SELECTOR,
        NewSlot::Train => &LEARNER,
    };
    let written = scaffold(template, &args.name, &args.root)?;
    let crate_name = format!("relab-plugin-{}", args.name);
    println!(
        "created {} ({} files) and linked {crate_name} into the relab binary",
        written.display(),
        template.files.len() + 1
    );
    println!("next: edit {}/src/lib.rs, then", written.display());
    println!("  cargo test -p {crate_name}          # the plugin kit's checks, rebuilding nothing else");
    println!("  cargo run --release -- run {}/{}.yaml", written.display(), args.name);
    Ok(())
}

/// Writes the plugin crate into `root/plugins/NAME` and adds it to the root package's `[dependencies]`. Returns the
/// crate's folder.
fn scaffold(template: &Template, name: &str, root: &Path) -> anyhow::Result<PathBuf> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-');
    if !valid {
        bail!(
            "plugin name `{name}`: expected lowercase letters, digits and dashes, starting with a letter (e.g. my-learner)"
        );
    }
    let manifest = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .with_context(|| format!("{}: not a relab workspace (use --root)", manifest.display()))?;
    let Some(deps_at) = text.find("\n[dependencies]\n") else {
        bail!("{}: no [dependencies] section to link the plugin into", manifest.display());
    };
    let dir = root.join("plugins").join(name);
    if dir.exists() {
        bail!("{} exists already: choose another name or remove it", dir.display());
    }
    let crate_name = format!("relab-plugin-{name}");
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let rename = |content: &str| {
        content
            .replace(template.crate_name, &crate_name)
            .replace(&template.crate_name.replace('-', "_"), &crate_name.replace('-', "_"))
            .replace(&format!("\"{}\"", template.plugin_name), &format!("\"{name}\""))
            .replace(template.type_name, &type_name)
            .replace("publish = false\n", "")
    };
    for (path, content) in template.files {
        let target = dir.join(path);
        fs::create_dir_all(target.parent().expect("a file in a folder"))
            .with_context(|| format!("cannot create {}", target.display()))?;
        fs::write(&target, rename(content)).with_context(|| format!("cannot write {}", target.display()))?;
    }
    let stages = match template.crate_name {
        "relab-template-learner" => format!("  train: {{ plugin: {name}, backbone: wrn10_2, epochs: 2 }}\n"),
        "relab-template-propagator" => {
            format!("  features: {{ source: pixels, pca: 64 }}\n  propagate: {{ plugin: {name} }}\n")
        }
        _ => format!(
            "  features: {{ source: pixels, pca: 64 }}\n  propagate: {{ plugin: diffusion }}\n  select: {{ plugin: {name}, per_class: 50 }}\n"
        ),
    };
    let yaml = format!(
        "# The `{name}` plugin on Fashion-MNIST with 40 labels: cargo run --release -- run plugins/{name}/{name}.yaml\n\
         extends: ../../experiments/base/fashion-mnist.yaml\n\
         name: {name}\n\
         dataset: {{ labels_per_class: 4, resize: 16, test_limit: 2000 }}\n\
         stages:\n{stages}"
    );
    fs::write(dir.join(format!("{name}.yaml")), yaml)
        .with_context(|| format!("cannot write the YAML in {}", dir.display()))?;
    // Linked into the binary: build.rs turns every relab-plugin-* dependency into a `use`.
    let at = deps_at + "\n[dependencies]\n".len();
    let line = format!("{crate_name} = {{ path = \"plugins/{name}\" }}\n");
    let linked = format!("{}{line}{}", &text[..at], &text[at..]);
    fs::write(&manifest, linked).with_context(|| format!("cannot write {}", manifest.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("Cargo.toml"), "[package]\nname = \"relab\"\n\n[dependencies]\nanyhow = \"1\"\n")
            .unwrap();
        root
    }

    #[test]
    fn the_learner_template_is_copied_with_its_names_replaced_and_linked() {
        let root = workspace();
        let dir = scaffold(&LEARNER, "my-learner", root.path()).unwrap();
        let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct MyLearner {") && lib.contains("pub struct MyLearnerParams {"));
        assert!(lib.contains("const NAME: &'static str = \"my-learner\";"));
        assert!(!lib.contains("EntropyMin") && !lib.contains("\"entropy-min\""));
        // Nothing but the names changed: the copy is the template, which builds and passes its tests in CI.
        let template = LEARNER.files[1].1;
        assert_eq!(lib.replace("MyLearner", "EntropyMin").replace("\"my-learner\"", "\"entropy-min\""), template);
        let test = fs::read_to_string(dir.join("tests/kit.rs")).unwrap();
        assert!(test.contains("use relab_plugin_my_learner::MyLearner;"), "{test}");
        let cargo = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"relab-plugin-my-learner\"") && !cargo.contains("publish"));
        assert!(dir.join("my-learner.yaml").is_file());
        let root_manifest = fs::read_to_string(root.path().join("Cargo.toml")).unwrap();
        assert!(
            root_manifest.contains("[dependencies]\nrelab-plugin-my-learner = { path = \"plugins/my-learner\" }\n")
        );
    }

    #[test]
    fn every_slot_s_template_is_copied_with_its_names_replaced() {
        for (template, name, ty) in
            [(&SSL, "my-ssl", "MySsl"), (&PROPAGATOR, "label-spread", "LabelSpread"), (&SELECTOR, "my-pick", "MyPick")]
        {
            let root = workspace();
            let dir = scaffold(template, name, root.path()).unwrap();
            let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap();
            assert!(lib.contains(&format!("const NAME: &'static str = \"{name}\";")), "{lib}");
            let back = lib
                .replace(ty, template.type_name)
                .replace(&format!("\"{name}\""), &format!("\"{}\"", template.plugin_name));
            assert_eq!(back, template.files[1].1);
            let yaml = fs::read_to_string(dir.join(format!("{name}.yaml"))).unwrap();
            assert!(yaml.contains(&format!("plugin: {name}")), "{yaml}");
        }
    }

    #[test]
    fn bad_names_and_existing_folders_are_refused_before_writing() {
        let root = workspace();
        for bad in ["My", "my_learner", "-x", "x-", "", "../x"] {
            let err = scaffold(&LEARNER, bad, root.path()).unwrap_err().to_string();
            assert!(err.contains("expected lowercase letters"), "{bad}: {err}");
        }
        scaffold(&LEARNER, "twice", root.path()).unwrap();
        let err = scaffold(&LEARNER, "twice", root.path()).unwrap_err().to_string();
        assert!(err.contains("exists already"), "{err}");
        let nowhere = tempfile::tempdir().unwrap();
        let err = scaffold(&LEARNER, "x", nowhere.path()).unwrap_err().to_string();
        assert!(err.contains("not a relab workspace"), "{err}");
    }
}
