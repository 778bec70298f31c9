//! Each point's share of the cores: `--jobs N` points at once get the launcher's CPUs split into N disjoint sets.
//! A child is pinned to its set (std's `available_parallelism`, which sizes relab's loader, kNN and image-batch
//! threads, follows the affinity mask) and told `RAYON_NUM_THREADS` (burn's and the kernels' rayon pool).

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled by the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            return (0..n).collect();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// The CPUs of slot `slot` of `jobs`: an equal share (at least one CPU), disjoint from the other slots' when there
/// are enough CPUs, wrapping round when there are more jobs than CPUs.
pub fn share(cpus: &[usize], jobs: usize, slot: usize) -> Vec<usize> {
    let per = (cpus.len() / jobs.max(1)).max(1);
    (0..per).map(|i| cpus[(slot * per + i) % cpus.len()]).collect()
}

/// Pins the calling process to `cpus`; for a child between fork and exec.
pub fn pin(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: the set is built locally and passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn jobs_get_disjoint_equal_shares_of_the_cpus() {
        let cpus = [0, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(share(&cpus, 2, 0), [0, 1, 2, 3]);
        assert_eq!(share(&cpus, 2, 1), [4, 5, 6, 7]);
        assert_eq!(share(&cpus, 3, 2), [4, 5]);
        assert_eq!(share(&cpus, 1, 0), cpus);
        // More jobs than CPUs: one CPU each, shared round.
        assert_eq!(share(&[2, 5], 3, 0), [2]);
        assert_eq!(share(&[2, 5], 3, 1), [5]);
        assert_eq!(share(&[2, 5], 3, 2), [2]);
    }
}
