//! `relab bench digest RUN_DIR`: what relab's integrity checks cost on a run folder's files — the SHA-256 digests
//! written with every stage and checkpoint and checked before reuse, and the copy (no longer a hard link) that the
//! stage cache stores. Prints one JSON line; docs/run-folders.md gives the figures of the main job's run folder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use relab_core::formats::digest;
use serde_json::json;

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// A folder (a run folder, say): every file under it is digested, then the whole tree copied once.
    dir: PathBuf,
    /// Digest passes to time (the median is reported); the first one also warms the page cache.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

pub fn digest(args: DigestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.repeat > 0, "--repeat must be positive");
    let mut seconds = Vec::new();
    let mut files = digest::Digests::new();
    for _ in 0..=args.repeat {
        let start = Instant::now();
        files = digest::digest_tree(&args.dir, |_| false)?;
        seconds.push(start.elapsed().as_secs_f64());
    }
    // The first pass read the files from disk; the others time the hashing itself.
    let mut timed = seconds[1..].to_vec();
    timed.sort_by(f64::total_cmp);
    let median = timed[timed.len() / 2];
    let bytes: u64 = files.values().map(|d| d.size).sum();
    // A sibling of the folder, on the same file system as a stage cache beside it would be; removed afterwards.
    let mut name = args.dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".relab-bench-copy-{}", std::process::id()));
    let copy_to = args.dir.with_file_name(name);
    let start = Instant::now();
    let copied = (|| -> anyhow::Result<()> {
        for name in files.keys() {
            let (from, to) = (args.dir.join(name), copy_to.join(name));
            std::fs::create_dir_all(to.parent().expect("a file's folder"))?;
            std::fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
        Ok(())
    })();
    let copy_seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&copy_to);
    copied?;
    let mib = bytes as f64 / (1 << 20) as f64;
    let line = json!({
        "dir": args.dir, "files": files.len(), "mib": mib,
        "digest_seconds": median, "digest_mib_per_second": mib / median,
        "copy_seconds": copy_seconds, "copy_mib_per_second": mib / copy_seconds,
    });
    println!("{line}");
    Ok(())
}
