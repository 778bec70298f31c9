//! Checks that a plugin library file is a whole ELF shared object for this machine before `dlopen` maps it: the
//! dynamic loader maps a truncated file's segments past its end, and the first touch of them kills the process
//! with SIGBUS and no message. (Elsewhere than Linux the loader's own checks are left to speak.)

use std::path::Path;

/// Why `bytes` (the whole file) cannot be a shared library for this process; `None` when its ELF headers hold
/// together: the right class, byte order, machine and type, and every program header, loaded segment and the
/// section header table inside the file.
pub fn check_elf(bytes: &[u8]) -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Some("not a shared library (no ELF header)".into());
    }
    let wide = cfg!(target_pointer_width = "64");
    let header_len = if wide { 64 } else { 52 };
    if bytes.len() < header_len {
        return Some(format!("truncated: {} bytes, shorter than an ELF header", bytes.len()));
    }
    if bytes[4] != if wide { 2 } else { 1 } {
        return Some(format!("an ELF file for {}-bit machines, not this one", if wide { 32 } else { 64 }));
    }
    let little = cfg!(target_endian = "little");
    if bytes[5] != if little { 1 } else { 2 } {
        return Some("an ELF file of the other byte order".into());
    }
    let read = |at: usize, len: usize| -> Option<u64> {
        let field = bytes.get(at..at + len)?;
        let mut value = 0u64;
        for i in 0..len {
            let byte = if little { field[len - 1 - i] } else { field[i] };
            value = (value << 8) | byte as u64;
        }
        Some(value)
    };
    let word = if wide { 8 } else { 4 };
    let e_type = read(16, 2)?;
    if e_type != 3 {
        return Some(format!("an ELF file of type {e_type}, not a shared object (type 3)"));
    }
    let machine = read(18, 2)?;
    if let Some(expected) = this_machine()
        && machine != expected
    {
        return Some(format!("an ELF file for machine {machine}, not this machine ({expected})"));
    }
    let (phoff, shoff) = (read(24 + word, word)?, read(24 + 2 * word, word)?);
    let at = 24 + 3 * word + 4 + 2;
    let (phentsize, phnum) = (read(at, 2)?, read(at + 2, 2)?);
    let (shentsize, shnum) = (read(at + 4, 2)?, read(at + 6, 2)?);
    let size = bytes.len() as u64;
    let truncated = |what: &str, end: u64| {
        Some(format!("truncated: {size} bytes, but its {what} reaches byte {end} (rebuild or copy it again)"))
    };
    let table_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if table_end > size {
        return truncated("program header table", table_end);
    }
    for i in 0..phnum {
        let header = (phoff + i * phentsize) as usize;
        // p_type, then (64-bit) p_flags, p_offset, p_vaddr, p_paddr, p_filesz or (32-bit) p_offset, ..., p_filesz.
        let (offset, filesz) = if wide {
            (read(header + 8, 8)?, read(header + 32, 8)?)
        } else {
            (read(header + 4, 4)?, read(header + 16, 4)?)
        };
        let end = offset.saturating_add(filesz);
        if read(header, 4)? == 1 && end > size {
            return truncated(&format!("loaded segment {i}"), end);
        }
    }
    let sections_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if shoff != 0 && sections_end > size {
        return truncated("section header table", sections_end);
    }
    None
}

/// `e_machine` of the ELF files this process can load, where known.
fn this_machine() -> Option<u64> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        "x86" => Some(3),
        "arm" => Some(40),
        "riscv64" => Some(243),
        _ => None,
    }
}

/// [`check_elf`] on the file at `path`; an unreadable file is left for the loader to report.
pub fn check(path: &Path) -> Option<String> {
    std::fs::read(path).ok().and_then(|bytes| check_elf(&bytes))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_whole_library_passes_and_a_cut_or_foreign_file_is_named() {
        // A shared object this process has loaded (libc, Rust's std, relab-core): whole by construction.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let library = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains(".so"))
            .expect("a loaded shared object");
        let bytes = std::fs::read(library).unwrap();
        assert_eq!(check_elf(&bytes), None);
        for cut in [1000, bytes.len() / 2, bytes.len() - 1] {
            let why = check_elf(&bytes[..cut]).unwrap_or_else(|| panic!("{cut} bytes passed"));
            assert!(why.starts_with(&format!("truncated: {cut} bytes")), "{why}");
        }
        assert_eq!(check_elf(b"not an ELF file").unwrap(), "not a shared library (no ELF header)");
        assert!(check_elf(&bytes[..20]).unwrap().contains("shorter than an ELF header"));
        let mut executable = bytes.clone();
        executable[16] = 2;
        assert!(check_elf(&executable).unwrap().contains("not a shared object"));
    }
}
