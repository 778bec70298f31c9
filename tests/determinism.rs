//! burn draws initial weights from one generator per backend, shared by every thread of the process. relab builds
//! its modules under `relab_core::nn::seeded`, which seeds that generator and holds a process-wide lock, so a seed
//! fixes a network even while other threads draw. This test binary is its own: the unit tests of other binaries
//! draw without the lock (as any code outside relab's constructions may), which is exactly what would break it.

use relab_core::burn::tensor::{Device, Distribution, Tensor};
use relab_core::nn::seeded::{seeded, to_overwrite};
use relab_core::nn::{BackboneConfig, BackboneKind};

fn logits(device: &Device, seed: u64) -> Vec<f32> {
    let ad = device.clone().autodiff();
    let model = seeded(device, seed, || BackboneConfig::new(BackboneKind::Wrn10_2, 1, 10).init(&ad));
    let x = Tensor::<4>::full([2, 1, 16, 16], 0.5, &ad);
    model.forward(x).logits.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn a_seed_fixes_the_network_while_another_thread_draws() {
    let device = Device::flex();
    let alone = logits(&device, 5);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let repeats: Vec<Vec<f32>> = std::thread::scope(|s| {
        // A second run in the same process, drawing through the lock as relab's constructions do.
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                to_overwrite(&device, || Tensor::<2>::random([64, 64], Distribution::Default, &device));
            }
        });
        let repeats = (0..4).map(|_| logits(&device, 5)).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        repeats
    });
    assert!(repeats.iter().all(|r| *r == alone), "the same seed gave another network");
    assert_ne!(logits(&device, 6), alone, "another seed gave the same network");
}
