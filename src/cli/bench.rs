use clap::{Args, Subcommand};
use relab_core::bench;
use relab_core::device;
use relab_core::experiment::BackendChoice;
use relab_core::nn::BackboneKind;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Training throughput: forward + backward + SGD step at a fixed batch on 32×32×3 inputs; prints one JSON line.
    Train(TrainArgs),
    /// A propagator alone on .npy files (diffusion unless --propagator names another), built through the registry;
    /// seconds per phase (whiten, kNN, graph, CG); prints one JSON line shaped as shared/bench/labelprop_reference.py's.
    Propagate(super::bench_propagate::PropagateArgs),
    /// The integrity checks' cost on a folder's files (a run folder): SHA-256 digests and the stage cache's copy;
    /// prints one JSON line.
    Digest(super::bench_digest::DigestArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// wrn28_2, resnet18, resnet50 or resnet50_imagenet.
    #[arg(long, default_value = "wrn28_2")]
    model: BackboneKind,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed steps (after the warm-up steps); the median gives the figure.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    #[arg(long, default_value_t = 0)]
    device: usize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Backend {
    Cpu,
    Wgpu,
    Cuda,
    Auto,
}

pub fn bench(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Train(args) => {
            anyhow::ensure!(args.steps > 0 && args.batch > 0, "--steps and --batch must be positive");
            let choice = match args.backend {
                Backend::Cpu => BackendChoice::Cpu,
                Backend::Wgpu => BackendChoice::Wgpu,
                Backend::Cuda => BackendChoice::Cuda,
                Backend::Auto => BackendChoice::Auto,
            };
            let device = device::resolve(choice, args.device)?;
            let result = bench::train_throughput(args.model, args.batch, args.steps, args.warmup, &device)?;
            println!("{}", serde_json::to_string(&result)?);
        }
        BenchCommand::Propagate(args) => super::bench_propagate::propagate(args)?,
        BenchCommand::Digest(args) => super::bench_digest::digest(args)?,
    }
    Ok(())
}
