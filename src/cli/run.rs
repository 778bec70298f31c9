use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use relab_core::component::headline;
use relab_core::pipeline::{self, RunOptions, StageCache};
use relab_core::{experiment, interrupt};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (YAML).
    experiment: PathBuf,
    /// Run folder (default `runs/<name>`); a sweep puts one sub-folder per grid point in it, and its manifest, logs
    /// and report. It must be new, empty or a run folder relab made (it carries a `.relab-run` marker), and not in
    /// use by another relab.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a value: `--set stages.propagate.k=50` (the value is YAML). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue interrupted stages from their last checkpoint (one whose inputs changed starts again, with a warning
    /// that lists what changed).
    #[arg(long)]
    resume: bool,
    /// Do not reuse or store finished stages in the shared stage cache (the run folder itself is still reused).
    #[arg(long)]
    no_cache: bool,
    /// The shared stage cache (default `$RELAB_CACHE`, else `~/.cache/relab/stages`).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Sweep points run at once, each its own process on its share of the cores.
    #[arg(long, default_value_t = 1, value_name = "N")]
    jobs: usize,
    /// Where the sweep's points run (wins over the experiment's `launcher:`); `--set slurm.KEY=VALUE` sets Slurm's.
    #[arg(long, value_enum)]
    launcher: Option<LauncherArg>,
    /// Print what a sweep would run (Slurm: its scripts and `sbatch` lines) without running or submitting anything.
    #[arg(long)]
    dry_run: bool,
    /// Run only this sweep point (its label) into `--out`: how a launcher starts each point.
    #[arg(long, hide = true)]
    point: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LauncherArg {
    Local,
    Slurm,
}

pub fn run(args: RunArgs, plugins: &[PathBuf]) -> anyhow::Result<()> {
    let registry = super::registry(plugins, &[&args.experiment], &args.set)?;
    let mut runs = experiment::load(&args.experiment, &args.set, &registry)?;
    let name = runs[0].experiment.name.clone().unwrap_or_else(|| "run".into());
    let base = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&name));
    if let Some(point) = &args.point {
        runs = vec![super::sweep::only_point(runs, point)?];
    } else if runs.len() > 1 {
        let request = super::sweep::SweepRequest {
            experiment: &args.experiment,
            overrides: &args.set,
            plugins,
            out: &base,
            resume: args.resume,
            no_cache: args.no_cache,
            cache_dir: args.cache_dir.as_deref(),
            jobs: args.jobs,
            launcher: args.launcher.map(|l| match l {
                LauncherArg::Local => experiment::Launcher::Local,
                LauncherArg::Slurm => experiment::Launcher::Slurm,
            }),
            dry_run: args.dry_run,
        };
        return super::sweep::run_sweep(&request, &runs);
    } else {
        // Launchers place a sweep's points; one run is this process's own, wherever the experiment asks to launch.
        let slurm = matches!(args.launcher, Some(LauncherArg::Slurm))
            || (args.launcher.is_none() && runs[0].experiment.launcher == Some(experiment::Launcher::Slurm));
        if args.dry_run {
            println!(
                "# dry run: {} is one run (no sweep), which would run here into {}",
                args.experiment.display(),
                base.display()
            );
            return Ok(());
        }
        if slurm {
            tracing::warn!(
                "launcher slurm submits a sweep's points; {} is one run (no `sweep:`), so it runs here, in this process",
                args.experiment.display()
            );
        }
    }
    // One run here (a sweep's launcher keeps its own handler, which forwards SIGTERM to the points).
    catch_stop_signals();
    let cache = if args.no_cache { None } else { args.cache_dir.or_else(pipeline::default_cache_dir) };
    let stop_after_checkpoints = std::env::var("RELAB_STOP_AFTER_CHECKPOINTS").ok().and_then(|v| v.parse().ok());
    // One run here: a sweep's points each come as their own `--point` process (see `sweep`).
    let resolved = &runs[0];
    let opts = RunOptions {
        out: base.clone(),
        resume: args.resume,
        cache: cache.map(StageCache::new),
        stop_after_checkpoints,
    };
    let result = pipeline::run(resolved, &registry, &opts);
    if let Some(signal) = interrupt::requested() {
        match &result {
            // The stage in progress logged where it stopped and that `--resume` continues.
            Err(relab_core::Error::Interrupted { .. }) => std::process::exit(i32::from(interrupt::exit_code(signal))),
            Err(e) => {
                tracing::error!("{e} (after {} asked the run to stop)", interrupt::signal_name(signal));
                std::process::exit(i32::from(interrupt::exit_code(signal)));
            }
            Ok(_) => {
                tracing::info!("{} came as the run finished; nothing is left to resume", interrupt::signal_name(signal))
            }
        }
    }
    let outcome = result.with_context(|| {
        let point = if resolved.label.is_empty() { String::new() } else { format!(" {}", resolved.label) };
        format!("run {name}{point} failed (its folder: {})", base.display())
    })?;
    println!("{}", headline(&outcome.dir, &outcome.summary));
    Ok(())
}

/// From now on SIGTERM, SIGINT and SIGUSR2 (Slurm's warning ahead of a time limit or preemption) ask the run to
/// stop resumably ([`interrupt`]): the training loop checkpoints after its step in flight and the process exits with
/// 128 + the signal's number.
fn catch_stop_signals() {
    extern "C" fn on_signal(signal: libc::c_int) {
        interrupt::request(signal);
    }
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR2] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; SA_RESTART keeps the run's
        // file I/O from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The numbers a researcher looks at first, one per line.
fn headline(dir: &std::path::Path, summary: &serde_json::Map<String, Value>) -> String {
    let mut lines = vec![format!("run folder: {}", dir.display())];
    let pct = |v: &Value| v.as_f64().map(|x| format!("{:.2}%", 100.0 * x));
    for &key in headline::HEADLINE_KEYS {
        if let Some(v) = summary.get(key).and_then(pct) {
            lines.push(format!("{key}: {v}"));
        }
    }
    if let Some(Value::Object(acc)) = summary.get("test_accuracy") {
        let parts: Vec<String> = acc.iter().filter_map(|(k, v)| pct(v).map(|p| format!("{k} {p}"))).collect();
        lines.push(format!("test_accuracy: {}", parts.join(", ")));
    }
    // A learner evaluating on more views than the plain image also reports the plain figures.
    let plain: Vec<String> = headline::plain_test_accuracies(summary)
        .into_iter()
        .filter_map(|(view, v)| pct(v).map(|p| format!("{view} {p}")))
        .collect();
    if !plain.is_empty() {
        lines.push(format!("plain test views: {}", plain.join(", ")));
    }
    if let Some(Value::Object(seconds)) = summary.get("seconds") {
        let total: f64 = seconds.values().filter_map(Value::as_f64).sum();
        let stages: Vec<String> =
            seconds.iter().filter_map(|(k, v)| v.as_f64().map(|s| format!("{k} {:.0}s", s))).collect();
        lines.push(format!("stage time: {:.1} min ({})", total / 60.0, stages.join(", ")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_shows_the_plain_figures_beside_those_of_other_test_views() {
        let summary = serde_json::json!({
            "propagation_accuracy": 0.78,
            "test_accuracy": { "last": 0.8, "swa": 0.79 },
            "plain_test_accuracy_last": 0.795,
            "plain_test_accuracy_swa": 0.7875,
        });
        let text = headline(std::path::Path::new("runs/x"), summary.as_object().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "run folder: runs/x",
                "propagation_accuracy: 78.00%",
                "test_accuracy: last 80.00%, swa 79.00%",
                "plain test views: last 79.50%, swa 78.75%",
            ]
        );
        let plain_only = serde_json::json!({ "test_accuracy": { "last": 0.8 } });
        let text = headline(std::path::Path::new("runs/x"), plain_only.as_object().unwrap());
        assert!(!text.contains("plain test views"), "{text}");
    }
}
