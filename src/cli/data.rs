use std::path::PathBuf;

use clap::Subcommand;
use relab_core::data;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Where relab looks for each dataset and what it finds there.
    Check {
        /// One dataset (`fashion-mnist`, `mnist`, `cifar10`, `cifar100`, `miniimagenet`); all when omitted.
        name: Option<String>,
        /// Look in this folder first.
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Prints what `relab data check` found; an error about any dataset makes the exit status non-zero (a dataset that
/// is only missing does not).
pub fn data(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Check { name, root } => {
            let reports = data::check(name.as_deref(), root.as_deref());
            for report in &reports {
                println!("{report}");
            }
            let failed: Vec<&str> = reports
                .iter()
                .filter(|r| matches!(r.outcome, data::CheckOutcome::Failed(_)))
                .map(|r| r.name.as_str())
                .collect();
            anyhow::ensure!(failed.is_empty(), "the check of {} failed (see above)", failed.join(", "));
        }
    }
    Ok(())
}
