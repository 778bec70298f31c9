//! Runs an experiment's stages in order into a run folder it owns and locks, reusing any stage whose inputs have not
//! changed and whose files still match their digests.

mod cache;
mod lock;
mod run;
mod run_folder;
mod stage_record;

pub use cache::{StageCache, default_cache_dir};
pub use lock::{FileLock, Held};
pub use run::{RunOptions, RunOutcome, run};
pub use run_folder::{LOCK, MARKER, RunFolder, mark};
pub use stage_record::StageRecord;
