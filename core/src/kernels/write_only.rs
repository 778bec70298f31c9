//! Output buffers that their kernels write whole, allocated without the zeroing pass of `vec![0.0; n]`.
//!
//! Every convolution and batch norm returns a fresh buffer the size of an activation. Zeroed by `calloc` on the
//! thread that asks for it, the buffers of one ResNet-18 step (about 0.6 GB) took 5 % of its time while the worker
//! threads waited; the kernels then overwrote every value anyway.

use std::mem::MaybeUninit;

/// A vector of `len` values, each written by `write` before anything reads it.
///
/// # Safety
/// `write` must write every one of the `len` values it is given (a panic in it loses the buffer, never exposes it).
pub(crate) unsafe fn written_whole(len: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    write(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the caller's contract: the first `len` values are written.
    unsafe { out.set_len(len) };
    out
}

/// `values` seen as memory to write into, for the write-only kernels to fill a buffer that already holds values.
///
/// # Safety
/// The caller stores only initialised values through the result (`MaybeUninit::write`, never
/// `MaybeUninit::uninit()`).
pub(crate) unsafe fn as_write_only(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout; what is stored stays initialised by the caller's contract.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_holds_what_was_written() {
        // SAFETY: every value is written.
        let v = unsafe { written_whole(5, |out| out.iter_mut().enumerate().for_each(|(i, o)| _ = o.write(i as f32))) };
        assert_eq!(v, [0.0, 1.0, 2.0, 3.0, 4.0]);
        let mut w = vec![9.0f32; 3];
        // SAFETY: only an initialised value is stored.
        let slots = unsafe { as_write_only(&mut w) };
        slots[1].write(-1.0);
        assert_eq!(w, [9.0, -1.0, 9.0]);
    }
}
