//! Runs an experiment's stages in order, reusing any stage whose inputs have not changed.

mod cache;
mod run;
mod stage_record;

pub use cache::{StageCache, default_cache_dir};
pub use run::{RunOptions, RunOutcome, run};
pub use stage_record::StageRecord;
