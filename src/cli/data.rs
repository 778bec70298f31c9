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

pub fn data(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Check { name, root } => {
            for report in data::check(name.as_deref(), root.as_deref()) {
                println!("{report}");
            }
        }
    }
    Ok(())
}
