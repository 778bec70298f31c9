//! Seeded construction of modules. burn draws initial weights (and `Tensor::random`) from one generator per backend,
//! shared by every thread of the process, so a seed set with `Device::seed` holds only until another thread draws.
//! Every relab construction that draws from that generator goes through [`seeded`], which seeds it and builds under
//! one process-wide lock: two runs on two threads of one process (the test harness, a sweep driver) then get the
//! same weights as each would alone.

use std::sync::{Mutex, PoisonError};

use burn::tensor::Device;

static GENERATOR: Mutex<()> = Mutex::new(());

/// Seeds burn's generator for `device` with `seed` and runs `build` while no other relab code can draw from it.
/// `build` must not call [`seeded`] itself (the lock is not re-entrant): keep it to the module's `init`.
pub fn seeded<T>(device: &Device, seed: u64, build: impl FnOnce() -> T) -> T {
    // A panic inside another thread's `build` leaves nothing half-written that matters here.
    let _guard = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
    device.seed(seed);
    build()
}

/// Builds a module whose values are about to be overwritten (loaded from a file): its draws still take the lock so
/// that they cannot disturb another thread's seeded construction.
pub fn to_overwrite<T>(device: &Device, build: impl FnOnce() -> T) -> T {
    seeded(device, 0, build)
}
