//! NumPy `.npz` archives: a zip of `.npy` members, as `numpy.savez` (stored) and `numpy.savez_compressed`
//! (deflated) write them. A key `k` is the member `k.npy`; `numpy.savez(f, a)` names its first positional array
//! `arr_0`. Writing produces stored (uncompressed) archives, atomically.
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

pub use super::npy::NpyArray;
use super::{atomic, npy};
use crate::{Error, Result};

/// The key `numpy.savez` gives its first positional array.
pub const DEFAULT_KEY: &str = "arr_0";

fn member_name(key: &str) -> String {
    if key.ends_with(".npy") { key.to_string() } else { format!("{key}.npy") }
}

fn open_archive(path: &Path) -> Result<ZipArchive<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    archive_of(path, BufReader::new(file))
}

fn archive_of<R: Read + Seek>(path: &Path, reader: R) -> Result<ZipArchive<R>> {
    ZipArchive::new(reader).map_err(|e| Error::format(path, format!("not a readable .npz (zip) archive: {e}")))
}

/// The keys of an `.npz` archive (member names without `.npy`), in archive order.
pub fn keys(path: &Path) -> Result<Vec<String>> {
    let archive = open_archive(path)?;
    Ok(archive.file_names().map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string()).collect())
}

/// Reads the array `arr_0`, what `numpy.savez(f, a)` writes.
pub fn read(path: &Path) -> Result<NpyArray> {
    read_key(path, DEFAULT_KEY)
}

/// Reads the array stored under `key` (the member `key.npy`; `key` may also name the member itself).
pub fn read_key(path: &Path, key: &str) -> Result<NpyArray> {
    read_key_in(path, &mut open_archive(path)?, key)
}

/// Reads `key` from the bytes of an `.npz` archive held in memory; `path` only names the source in error messages.
pub fn parse_key(path: &Path, bytes: &[u8], key: &str) -> Result<NpyArray> {
    read_key_in(path, &mut archive_of(path, Cursor::new(bytes))?, key)
}

fn read_key_in<R: Read + Seek>(path: &Path, archive: &mut ZipArchive<R>, key: &str) -> Result<NpyArray> {
    let member = member_name(key);
    if archive.index_for_name(&member).is_none() {
        let found: Vec<&str> = archive.file_names().collect();
        return Err(Error::format(
            path,
            format!("no array `{key}` in this .npz (expected member `{member}`, found {found:?})"),
        ));
    }
    let mut file =
        archive.by_name(&member).map_err(|e| Error::format(path, format!("cannot open member `{member}`: {e}")))?;
    let size = file.size();
    // Trust the declared size only as far as the compressed data can hold it (deflate expands at most ~1032×).
    let mut bytes = Vec::with_capacity(size.min(file.compressed_size().saturating_mul(1032)).min(1 << 32) as usize);
    (&mut file)
        .take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::format(path, format!("member `{member}` is corrupt: {e}")))?;
    npy::decode_any(&mut &bytes[..], bytes.len() as u64)
        .map_err(|f| f.into_error(path, &format!("member `{member}`: ")))
}

/// Writes `arrays` as an uncompressed `.npz` (each under `key.npy`), atomically. Keys must be distinct and non-empty.
pub fn write(path: &Path, arrays: &[(&str, &NpyArray)]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (key, arr) in arrays {
        if key.is_empty() || !seen.insert(member_name(key)) {
            return Err(Error::format(path, format!("npz keys must be distinct and non-empty; `{key}` is not")));
        }
        if !arr.shape_ok() {
            return Err(Error::format(
                path,
                format!("array `{key}`: shape {:?} does not hold its {} values", arr.shape(), arr.len()),
            ));
        }
    }
    let zip_err = |e: zip::result::ZipError| Error::format(path, format!("cannot build the .npz archive: {e}"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (key, arr) in arrays {
        // Header (< 64 KiB) plus at most 8 bytes per value: switch to zip64 where a member may pass 4 GiB.
        let bound = (arr.len() as u64).saturating_mul(8).saturating_add(1 << 16);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(bound >= u32::MAX as u64);
        zip.start_file(member_name(key), options).map_err(zip_err)?;
        arr.write_npy(&mut zip).map_err(|e| Error::io(path, e))?;
    }
    let bytes = zip.finish().map_err(zip_err)?.into_inner();
    atomic::write_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.npz");
        let a = NpyArray::F32 { shape: vec![2, 3], data: vec![0.5, 1., 2., 3., 4., -5.] };
        let b = NpyArray::I64 { shape: vec![4], data: vec![9, 8, -7, 1 << 50] };
        let e = NpyArray::I64 { shape: vec![0, 3], data: vec![] };
        let z = NpyArray::F32 { shape: vec![], data: vec![7.0] };
        write(&path, &[("arr_0", &a), ("idx", &b), ("empty", &e), ("scalar", &z)]).unwrap();
        assert_eq!(keys(&path).unwrap(), vec!["arr_0", "idx", "empty", "scalar"]);
        assert_eq!(read(&path).unwrap(), a);
        assert_eq!(read_key(&path, "idx").unwrap(), b);
        assert_eq!(read_key(&path, "empty.npy").unwrap(), e);
        assert_eq!(read_key(&path, "scalar").unwrap(), z);
        let msg = read_key(&path, "nope").unwrap_err().to_string();
        assert!(msg.contains("nope") && msg.contains("arr_0.npy"), "{msg}");
        // Only the archive is left in the folder.
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn write_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        let a = NpyArray::I64 { shape: vec![2], data: vec![1, 2] };
        assert!(write(&path, &[("a", &a), ("a.npy", &a)]).is_err());
        assert!(write(&path, &[("", &a)]).is_err());
        let bad = NpyArray::I64 { shape: vec![3], data: vec![1, 2] };
        assert!(write(&path, &[("a", &bad)]).is_err());
        assert!(!path.exists());
    }

    /// `np.savez(b, np.eye(3, dtype=np.float32)[[0, 2, 1, 1]])`, numpy 2.4 (stored, zip64 extra fields).
    const NUMPY_SAVEZ: &str = "504b03042d00000000000000210038423782ffffffffffffffff090014006172725f302e6e707901001000b000000000000000b000000000000000934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028342c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000803f000000000000000000000000000000000000803f000000000000803f00000000000000000000803f00000000504b01022d032d00000000000000210038423782b0000000b00000000900000000000000000000008001000000006172725f302e6e7079504b0506000000000100010037000000eb0000000000";

    /// `np.savez_compressed(b, np.array([5, 2, 7, 0], dtype='<i8'), mask=np.array([True, False, True]))`, numpy 2.4.
    const NUMPY_SAVEZ_COMPRESSED: &str = "504b03042d00000008000000210016938cbbffffffffffffffff080014006d61736b2e6e707901001000830000000000000047000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a05e9364a8aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91ac63a9a3a0ab50a14002e46064600504b03042d0000000800000021009eaf42fdffffffffffffffff090014006172725f302e6e707901001000a0000000000000004e000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9369a1aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a263a9a3a0ab50a14002e5606086082d2ec0ca80000504b01022d032d00000008000000210016938cbb47000000830000000800000000000000000000008001000000006d61736b2e6e7079504b01022d032d0000000800000021009eaf42fd4e000000a00000000900000000000000000000008001810000006172725f302e6e7079504b050600000000020002006d0000000a0100000000";

    #[test]
    fn reads_numpy_archives() {
        let dir = tempfile::tempdir().unwrap();
        let stored = dir.path().join("stored.npz");
        std::fs::write(&stored, unhex(NUMPY_SAVEZ)).unwrap();
        let eye = NpyArray::F32 { shape: vec![4, 3], data: vec![1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0.] };
        assert_eq!(read(&stored).unwrap(), eye);

        let deflated = dir.path().join("deflated.npz");
        std::fs::write(&deflated, unhex(NUMPY_SAVEZ_COMPRESSED)).unwrap();
        assert_eq!(keys(&deflated).unwrap(), vec!["mask", "arr_0"]);
        assert_eq!(read(&deflated).unwrap(), NpyArray::I64 { shape: vec![4], data: vec![5, 2, 7, 0] });
        assert_eq!(read_key(&deflated, "mask").unwrap(), NpyArray::I64 { shape: vec![3], data: vec![1, 0, 1] });
    }

    #[test]
    fn corrupt_archives_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = unhex(NUMPY_SAVEZ_COMPRESSED);
        let cut = dir.path().join("cut.npz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(read(&cut).unwrap_err(), Error::Format { .. }));
        // Damage the deflated data of the first member (`mask`): the CRC or the inflater must catch it.
        let mut damaged = bytes.clone();
        for b in &mut damaged[60..80] {
            *b ^= 0x5a;
        }
        let bad = dir.path().join("bad.npz");
        std::fs::write(&bad, &damaged).unwrap();
        let e = read_key(&bad, "mask").unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        let not_zip = dir.path().join("plain.npz");
        std::fs::write(&not_zip, npy::to_bytes_f32(&[1], &[1.0])).unwrap();
        assert!(read(&not_zip).unwrap_err().to_string().contains("not a readable .npz"));
        // A member that is not a valid .npy names the member.
        let weird = dir.path().join("weird.npz");
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("arr_0.npy", SimpleFileOptions::default()).unwrap();
        zip.write_all(b"hello").unwrap();
        std::fs::write(&weird, zip.finish().unwrap().into_inner()).unwrap();
        let msg = read(&weird).unwrap_err().to_string();
        assert!(msg.contains("member `arr_0.npy`"), "{msg}");
    }

    #[test]
    fn no_panic_on_damaged_archives() {
        let p = Path::new("d.npz");
        for fixture in [NUMPY_SAVEZ, NUMPY_SAVEZ_COMPRESSED] {
            let good = unhex(fixture);
            assert!(parse_key(p, &good, "arr_0").is_ok());
            for cut in 0..good.len() {
                assert!(parse_key(p, &good[..cut], "arr_0").is_err(), "prefix of {cut} bytes");
            }
            for pos in 0..good.len() {
                for x in [0x01u8, 0x80, 0xff] {
                    let mut bad = good.clone();
                    bad[pos] ^= x;
                    let _ = parse_key(p, &bad, "arr_0");
                }
            }
        }
    }

    #[test]
    fn npy_bytes_helpers() {
        let a = NpyArray::I64 { shape: vec![2, 2], data: vec![1, 2, 3, 4] };
        let bytes = npy::to_bytes_i64(&[2, 2], &[1, 2, 3, 4]);
        assert_eq!(NpyArray::from_npy_bytes(Path::new("m.npy"), &bytes).unwrap(), a);
        assert_eq!(a.descr(), "<i8");
    }
}
