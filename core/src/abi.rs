//! What a plugin library and the relab binary must share for the library to run against the binary's relab-core.
//!
//! relab-core is a Rust `dylib`: the binary and every plugin library link one `librelab_core.so`, hence one burn,
//! one autodiff graph and one device table. Rust has no stable ABI, so a library must also have been compiled
//! against exactly this relab-core: [`STAMP`] records the crate version and a hash of its source, the compiler,
//! burn's version, the target, the features and debug assertions (computed by `build.rs`). A library embeds its
//! copy of the stamp at compile time ([`crate::export_plugins!`]); the host compares it with its own before it
//! touches anything else in the library, then checks with [`anchor`] that the library really is bound to the
//! host's copy of relab-core and not to a second one.

use std::ffi::CStr;

/// This relab-core's ABI stamp, e.g. `relab-core 0.1.0 (source 1f…); rustc 1.95.0 (…); burn 0.22.1; target
/// x86_64-unknown-linux-gnu; features []; debug-assertions off`.
pub const STAMP: &str = env!("RELAB_ABI_STAMP");

/// [`STAMP`] as a C string: a `const`, so a plugin that returns it returns the bytes compiled into the plugin.
pub const STAMP_C: &CStr = match CStr::from_bytes_with_nul(concat!(env!("RELAB_ABI_STAMP"), "\0").as_bytes()) {
    Ok(stamp) => stamp,
    Err(_) => panic!("the stamp holds no NUL byte"),
};

/// One byte whose address identifies the loaded copy of relab-core.
static ANCHOR: u8 = 0;

/// The address of a static of the relab-core this code is bound to at run time: equal in the binary and in a
/// library only when both use the same loaded copy.
#[inline(never)]
pub fn anchor() -> usize {
    std::ptr::addr_of!(ANCHOR) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_names_every_part_and_its_c_form_is_the_same_text() {
        for part in
            ["relab-core ", "(source ", "; rustc ", "; burn ", "; target ", "; features [", "; debug-assertions "]
        {
            assert!(STAMP.contains(part), "{part:?} missing from {STAMP}");
        }
        assert!(STAMP.contains(env!("CARGO_PKG_VERSION")));
        assert_eq!(STAMP_C.to_str().unwrap(), STAMP);
        assert_eq!(anchor(), anchor());
    }
}
