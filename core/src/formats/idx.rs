//! The IDX format of MNIST and Fashion-MNIST: a big-endian header (two zero bytes, a type byte, a dimension count,
//! then one `u32` per dimension) followed by the values, row-major. Only `u8` values occur in these datasets.

use std::path::Path;

use super::gzip::read_maybe_gzip;
use crate::{Error, Result};

/// Type byte of unsigned 8-bit values.
const TYPE_U8: u8 = 0x08;

/// A `u8` IDX array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an image file (magic `0x00000803`: N × rows × cols), gzip or raw.
pub fn read_images(path: &Path) -> Result<IdxArray> {
    read_expecting(path, 3)
}

/// Reads a label file (magic `0x00000801`: N), gzip or raw.
pub fn read_labels(path: &Path) -> Result<IdxArray> {
    read_expecting(path, 1)
}

fn read_expecting(path: &Path, ndims: u8) -> Result<IdxArray> {
    let bytes = read_maybe_gzip(path)?;
    parse(&bytes, ndims).map_err(|m| Error::format(path, m))
}

/// Parses an IDX array of `u8` with exactly `ndims` dimensions; the message says what is wrong.
pub(crate) fn parse(bytes: &[u8], ndims: u8) -> std::result::Result<IdxArray, String> {
    let expected_magic = u32::from_be_bytes([0, 0, TYPE_U8, ndims]);
    let Some(magic) = bytes.get(..4) else {
        return Err(format!("IDX file too short for its header ({} bytes)", bytes.len()));
    };
    let magic = u32::from_be_bytes(magic.try_into().expect("4 bytes"));
    if magic != expected_magic {
        return Err(format!(
            "not an IDX file of {ndims}-D u8 data: magic {magic:#010x}, expected {expected_magic:#010x}"
        ));
    }
    let header_len = 4 + 4 * ndims as usize;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(format!("IDX header truncated: {} bytes, the header needs {header_len}", bytes.len()));
    };
    let dims: Vec<usize> =
        dim_bytes.chunks_exact(4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize).collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("IDX dimensions {dims:?} overflow"))?;
    let body = &bytes[header_len..];
    if body.len() != count {
        let what = if body.len() < count { "truncated" } else { "has trailing bytes" };
        return Err(format!("IDX file {what}: dimensions {dims:?} need {count} data bytes, found {}", body.len()));
    }
    Ok(IdxArray { dims, data: body.to_vec() })
}

/// Test helper: the bytes of an IDX `u8` file with these dimensions.
#[cfg(test)]
pub(crate) fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_images_raw_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let file = encode(&[2, 3, 4], &data);
        let raw = dir.path().join("img-idx3-ubyte");
        let gz = dir.path().join("img-idx3-ubyte.gz");
        std::fs::write(&raw, &file).unwrap();
        std::fs::write(&gz, gzip(&file)).unwrap();
        for p in [&raw, &gz] {
            let a = read_images(p).unwrap();
            assert_eq!(a.dims, vec![2, 3, 4]);
            assert_eq!(a.data, data);
        }
    }

    #[test]
    fn reads_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels");
        std::fs::write(&p, encode(&[3], &[9, 0, 4])).unwrap();
        assert_eq!(read_labels(&p).unwrap(), IdxArray { dims: vec![3], data: vec![9, 0, 4] });
    }

    #[test]
    fn labels_file_is_not_an_image_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels");
        std::fs::write(&p, encode(&[3], &[9, 0, 4])).unwrap();
        let err = read_images(&p).unwrap_err();
        assert!(matches!(err, Error::Format { .. }));
        assert!(err.to_string().contains("magic 0x00000801"), "{err}");
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = encode(&[2, 2, 2], &[1; 8]);
        for cut in 0..file.len() {
            let p = dir.path().join(format!("cut{cut}"));
            std::fs::write(&p, &file[..cut]).unwrap();
            let err = read_images(&p).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "cut {cut}: {err}");
            assert!(err.to_string().contains(&format!("cut{cut}")));
        }
        let p = dir.path().join("long");
        let mut long = file.clone();
        long.push(0);
        std::fs::write(&p, long).unwrap();
        assert!(read_images(&p).unwrap_err().to_string().contains("trailing"));
    }

    #[test]
    fn huge_dimensions_do_not_overflow_or_allocate() {
        let mut file = encode(&[u32::MAX as usize, u32::MAX as usize, u32::MAX as usize], &[]);
        file.push(0);
        assert!(parse(&file, 3).is_err());
    }
}
