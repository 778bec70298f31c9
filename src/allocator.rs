//! Keeping freed memory in the process instead of handing it back to the kernel after every tensor.
//!
//! A training step allocates and frees activations, gradients and im2col buffers of a few to a few tens of MiB,
//! thousands of times. glibc's malloc by default serves the larger ones with fresh `mmap`s and trims the top of the
//! heap when they are freed, so the next step faults in and zeroes the same pages again: about a tenth of a CPU step
//! (WRN-28-2, batch 64). Raising the mmap threshold to glibc's maximum (32 MiB) and never trimming keeps those pages
//! for reuse; the peak resident memory stays the same, since what is kept is what the next step allocates again.

/// Sets the two thresholds; a no-op where the C library is not glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD_MAX: libc::c_int = 32 << 20;
        // SAFETY: mallopt only changes malloc's tunables; it is called before the process starts any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}
