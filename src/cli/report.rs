use std::path::PathBuf;

pub fn report(runs: &[PathBuf]) -> anyhow::Result<()> {
    if let [dir] = runs
        && super::sweep::report::is_sweep(dir)
    {
        return super::sweep::report::sweep_report(dir);
    }
    print!("{}", relab_core::report::summary_table(runs)?);
    Ok(())
}
