//! The process-wide request to stop a run early and resumably: the binary's signal handler stores the signal here
//! (SIGTERM, SIGINT, SIGUSR2), the training loop polls it after every step and ends its stage with a checkpoint and
//! [`Error::Interrupted`], and the pipeline polls it between stages. Storing is all a signal handler may do, so the
//! flag is one atomic.
//!
//! ```ignore
//! extern "C" fn on_signal(signal: libc::c_int) { relab_core::interrupt::request(signal) }
//! // ...in a loop that can stop cleanly:
//! if let Some(signal) = relab_core::interrupt::requested() { /* save, then */ return Err(Error::Interrupted { signal }) }
//! ```

use std::sync::atomic::{AtomicI32, Ordering};

use crate::Error;

/// One stop request: 0 for none, else the signal's number. Its own type so that tests use a private one rather
/// than the process's.
#[derive(Debug, Default)]
pub struct Flag(AtomicI32);

impl Flag {
    pub const fn new() -> Self {
        Flag(AtomicI32::new(0))
    }

    /// Async-signal-safe: a single atomic store. The first signal wins, so the exit code names what stopped the
    /// run even when another signal follows.
    pub fn request(&self, signal: i32) {
        let _ = self.0.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn requested(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

static PROCESS: Flag = Flag::new();

/// Asks the run in this process to stop resumably (called from a signal handler).
pub fn request(signal: i32) {
    PROCESS.request(signal);
}

/// The signal that asked this process to stop, if one did.
pub fn requested() -> Option<i32> {
    PROCESS.requested()
}

/// `Err(Error::Interrupted)` when a stop was requested: for a place where stopping loses nothing (between stages).
pub fn check() -> crate::Result<()> {
    match requested() {
        Some(signal) => Err(Error::Interrupted { signal }),
        None => Ok(()),
    }
}

/// The exit status of a process that stopped on `signal`, as a shell reports a signal's death: 128 + its number.
pub fn exit_code(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}

/// `SIGTERM`, `SIGINT`, `SIGUSR2` (Linux numbering), else `signal N`.
pub fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        12 => "SIGUSR2".into(),
        10 => "SIGUSR1".into(),
        1 => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_kept_and_maps_to_a_shells_exit_status() {
        let flag = Flag::new();
        assert_eq!(flag.requested(), None);
        flag.request(12);
        flag.request(15);
        assert_eq!(flag.requested(), Some(12));
        assert_eq!((exit_code(15), exit_code(2), exit_code(12)), (143, 130, 140));
        assert_eq!(
            (signal_name(15).as_str(), signal_name(12).as_str(), signal_name(40).as_str()),
            ("SIGTERM", "SIGUSR2", "signal 40")
        );
    }
}
