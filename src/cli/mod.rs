//! Command-line interface. Each subcommand lives in its own file; this one parses and dispatches.

mod bench;
mod bench_propagate;
mod data;
mod plugins;
mod report;
mod run;
mod validate;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Benchmarks (figures, not tests): `relab bench train --model wrn28_2 --batch 64`,
    /// `relab bench propagate --features F.npy --labels L.npy --seeds S.npy`.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// One table of the summary numbers of several runs, mean ± std over runs that differ only by seed.
    Report {
        /// Run folders (each with summary.json and config.yaml).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
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
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::validate(args),
        Command::Plugins(cmd) => plugins::plugins(cmd),
        Command::Data(cmd) => data::data(cmd),
        Command::Report { runs } => report::report(&runs),
        Command::Bench(cmd) => bench::bench(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
