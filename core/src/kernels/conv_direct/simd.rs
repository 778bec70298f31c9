//! The vector instructions the kernels are written in, on two instruction sets: AVX-512F (16 lanes, 32 registers)
//! and AVX2 with FMA (8 lanes, 16 registers; the CPUs without AVX-512, many AMD EPYCs among them).
//!
//! Each kernel is one generic body, `#[inline(always)]`, instantiated inside a `#[target_feature]` entry point per
//! instruction set, so that these wrappers and the intrinsics they call compile to the instruction set's vector
//! code within that entry point. Each instruction set sizes the kernels' register tiles to its register file.

use std::arch::x86_64::*;

/// The instruction sets the kernels run on, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// The instruction sets the kernels are written for, best first.
    pub const ALL: [Isa; 2] = [Isa::Avx512, Isa::Avx2];

    /// Every instruction set this CPU runs, best first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.runs_here()).collect()
    }

    /// Whether this CPU runs it (the detection is cached by `std`).
    pub fn runs_here(self) -> bool {
        match self {
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
        }
    }

    /// f32 lanes of one vector.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => Avx512::LANES,
            Isa::Avx2 => Avx2::LANES,
        }
    }
}

/// One vector of f32 and what the kernels do with it.
///
/// # Safety
/// Every method needs the instruction set of its implementation, and the pointers must hold `LANES` values (the
/// first `lanes` for [`Simd::store_first`]).
pub(super) trait Simd {
    type V: Copy;
    const LANES: usize;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Stores the first `lanes` values only.
    unsafe fn store_first(p: *mut f32, v: Self::V, lanes: usize);
    /// `a · b + c`, one rounding.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Ends one step of a kernel's unrolled inner loop: loads after it stay after it.
    fn step_end();
}

pub(super) struct Avx512;

impl Simd for Avx512 {
    type V = __m512;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }

    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }

    #[inline(always)]
    unsafe fn store_first(p: *mut f32, v: __m512, lanes: usize) {
        let mask = if lanes >= 16 { !0 } else { (1u16 << lanes) - 1 };
        unsafe { _mm512_mask_storeu_ps(p, mask, v) }
    }

    #[inline(always)]
    unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }

    #[inline(always)]
    fn step_end() {}
}

pub(super) struct Avx2;

impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }

    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }

    #[inline(always)]
    unsafe fn store_first(p: *mut f32, v: __m256, lanes: usize) {
        if lanes >= 8 {
            return unsafe { _mm256_storeu_ps(p, v) };
        }
        // A lane is stored where its mask's sign bit is set: lane index < lanes. (A masked store is slow on some
        // CPUs, hence the plain one for whole vectors.)
        unsafe {
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            _mm256_maskstore_ps(p, mask, v)
        }
    }

    #[inline(always)]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }

    /// With 16 registers, LLVM's scheduler hoisted the next taps' loads above the current tap's FMAs and spilled
    /// them to the stack (12 accumulators leave 4 registers). An empty `asm!` that may touch memory keeps every
    /// load on its side; it emits no instruction.
    #[inline(always)]
    fn step_end() {
        // SAFETY: an empty instruction sequence.
        unsafe { std::arch::asm!("", options(nostack, preserves_flags)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_store_first(lanes: usize) -> [f32; 8] {
        let mut out = [-1.0f32; 8];
        unsafe {
            let v = Avx2::fmadd(
                Avx2::splat(2.0),
                Avx2::load([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0].as_ptr()),
                Avx2::splat(0.5),
            );
            Avx2::store_first(out.as_mut_ptr(), v, lanes);
        }
        out
    }

    #[test]
    fn a_partial_store_writes_only_its_lanes() {
        if !Isa::available().contains(&Isa::Avx2) {
            return;
        }
        // SAFETY: AVX2 and FMA checked above.
        let out = unsafe { avx2_store_first(3) };
        assert_eq!(out, [2.5, 4.5, 6.5, -1.0, -1.0, -1.0, -1.0, -1.0]);
        assert_eq!(unsafe { avx2_store_first(8) }[7], 16.5);
    }
}
