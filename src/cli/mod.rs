//! Command-line interface. Each subcommand lives in its own file; this one parses and dispatches.

mod bench;
mod bench_digest;
mod bench_propagate;
mod data;
mod device;
mod new;
mod plugins;
mod report;
mod run;
mod sweep;
mod validate;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use relab_core::experiment;
use relab_core::registry::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "relab",
    version,
    about = "Reliable label bootstrapping: few-label image classification from YAML experiments"
)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). `RUST_LOG` takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Load plugins from this shared library (a relab plugin crate built as a `dylib`). Repeatable; see also
    /// `RELAB_PLUGIN_PATH` and `plugins:` in experiment files.
    #[arg(long = "plugin", value_name = "PATH", global = true)]
    plugins: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment (every point of its sweep) into a run folder.
    Run(run::RunArgs),
    /// Check experiment files without running them: schema, plugins, parameters, paths, datasets.
    Validate(validate::ValidateArgs),
    /// List or describe the registered plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Datasets on this machine.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// The backends this build has, the GPU adapters wgpu sees, and what `backend: auto` picks and why.
    Device(device::DeviceArgs),
    /// Benchmarks (figures, not tests): `relab bench train --model wrn28_2 --batch 64`,
    /// `relab bench propagate --features F.npy --labels L.npy --seeds S.npy`.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Scaffold a plugin crate from the slot's template: `relab new train my-learner` writes plugins/my-learner/
    /// (parameters, registration, the kit's tests, a YAML) and links it into the binary.
    New(new::NewArgs),
    /// One table of the summary numbers of several runs, mean ± std over runs that differ only by seed; given a
    /// sweep folder, writes its report (report.md, summary.csv, plots/, TensorBoard event files).
    Report {
        /// Run folders (each with summary.json and config.yaml), or one sweep folder (with sweep.json).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
    /// Where each point of a sweep stands: done, running, failed (with its log's last lines), not started.
    Status {
        /// The sweep folder (the one holding sweep.json).
        sweep_dir: PathBuf,
    },
    /// Run again, resuming from their checkpoints, the points of a sweep that failed or never started.
    Resubmit {
        /// The sweep folder (the one holding sweep.json).
        sweep_dir: PathBuf,
        /// Points run at once.
        #[arg(long, default_value_t = 1, value_name = "N")]
        jobs: usize,
        /// Only the points that failed, not those that never started.
        #[arg(long)]
        failed: bool,
    },
}

/// Parses `args` (program name first), runs the command and maps every error to a message and exit code 1.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run::run(args, &cli.plugins),
        Command::Validate(args) => validate::validate(args, &cli.plugins),
        Command::Plugins(cmd) => plugins::plugins(cmd, &cli.plugins),
        Command::Data(cmd) => data::data(cmd),
        Command::Device(args) => device::device(args),
        Command::Report { runs } => report::report(&runs),
        Command::Bench(cmd) => bench::bench(cmd),
        Command::New(args) => new::new(args),
        Command::Status { sweep_dir } => sweep::status::status(&sweep_dir),
        Command::Resubmit { sweep_dir, jobs, failed } => sweep::resubmit(&sweep_dir, jobs, failed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by `: `, leaving out a cause whose text the message already ends with (relab's
/// I/O errors print their OS error, which is also their source).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The compiled-in plugins, then the libraries of `RELAB_PLUGIN_PATH`, of `--plugin` and of each experiment file's
/// `plugins:` (after its `--set` overrides).
fn registry(plugins: &[PathBuf], files: &[&Path], overrides: &[String]) -> anyhow::Result<Registry> {
    let mut registry = Registry::with_libraries(plugins)?;
    for file in files {
        for library in experiment::plugin_libraries(file, overrides)? {
            registry
                .load_library(&library)
                .with_context(|| format!("{}: plugins: cannot use {}", file.display(), library.display()))?;
        }
    }
    Ok(registry)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A second call (tests run several commands in one process) keeps the first subscriber.
    // Colour codes only for a terminal: a log redirected to a file (a sweep point's log, CI) stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_is_printed_once_after_its_path() {
        let io = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        let e = anyhow::Error::new(relab_core::Error::io("/x/y", io)).context("run x failed");
        let os = std::io::Error::from(std::io::ErrorKind::NotADirectory).to_string();
        assert_eq!(message(&e), format!("run x failed: /x/y: {os}"));
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(message(&plain), "outer: inner");
    }
}
