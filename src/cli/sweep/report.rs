//! `relab report SWEEP_DIR`: the sweep report of the manifest's run folders (see
//! `relab_core::report::write_sweep_report`), also written when a sweep ends with every point done.

use std::path::{Path, PathBuf};

use super::manifest::Manifest;

/// Writes the report of the sweep in `dir` and prints its table and where it went.
pub fn sweep_report(dir: &Path) -> anyhow::Result<()> {
    let manifest = Manifest::read(dir)?;
    let runs: Vec<PathBuf> = manifest.points.iter().map(|p| p.run_dir(dir)).collect();
    let report = relab_core::report::write_sweep_report(dir, &runs)?;
    print!("{}", report.table);
    println!(
        "sweep report: {} (table also in {}, plots under {}, a TensorBoard event file in each run folder)",
        dir.join("report.md").display(),
        dir.join("summary.csv").display(),
        dir.join("plots").display()
    );
    Ok(())
}

/// Whether `dir` is a sweep folder (it holds a manifest).
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(super::manifest::FILE).is_file()
}
