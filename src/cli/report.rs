use std::path::PathBuf;

pub fn report(runs: &[PathBuf]) -> anyhow::Result<()> {
    print!("{}", relab_core::report::summary_table(runs)?);
    Ok(())
}
