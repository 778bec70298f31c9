use std::path::PathBuf;

use clap::Args;
use relab_core::{data, experiment};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Experiment files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Same as `relab run --set`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Treat a dataset that is not on this machine as an error (by default it is a note, so that experiments for
    /// other machines still validate).
    #[arg(long)]
    require_data: bool,
}

pub fn validate(args: ValidateArgs, plugins: &[PathBuf]) -> anyhow::Result<()> {
    let files: Vec<&std::path::Path> = args.files.iter().map(PathBuf::as_path).collect();
    let registry = super::registry(plugins, &files, &args.set)?;
    let mut failed = 0;
    for file in &args.files {
        match experiment::load(file, &args.set, &registry) {
            Ok(runs) => {
                // A backend this build lacks fails here rather than when the run starts.
                if let Err(e) = relab_core::device::compiled(runs[0].experiment.backend) {
                    failed += 1;
                    eprintln!("{}: backend: {e}", file.display());
                    continue;
                }
                let dataset = &runs[0].experiment.dataset;
                let data_note = match data::locate::locate(&dataset.name, dataset.root.as_deref()) {
                    Ok(found) => format!("dataset {} at {}", dataset.name, found.dir().display()),
                    Err(e) if args.require_data => {
                        failed += 1;
                        eprintln!("{}: {e}", file.display());
                        continue;
                    }
                    Err(e) => format!("note: {e}"),
                };
                println!(
                    "{}: ok ({} run{}; {data_note})",
                    file.display(),
                    runs.len(),
                    if runs.len() == 1 { "" } else { "s" }
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} experiment files failed validation", args.files.len());
    }
    Ok(())
}
