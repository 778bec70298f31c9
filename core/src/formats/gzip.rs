//! Reading a file that may or may not be gzip-compressed: dataset mirrors ship both, and the name is not a
//! reliable guide (some unpack `.gz` files in place and keep the name), so the content decides.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The file's bytes, decompressed when they start with the gzip magic.
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    // Multi-member streams are valid gzip (`cat a.gz b.gz`), so read every member, not just the first.
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("corrupt or truncated gzip stream: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_raw_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, b"hello").unwrap();
        let gz = dir.path().join("x.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"hello").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_maybe_gzip(&raw).unwrap(), b"hello");
        assert_eq!(read_maybe_gzip(&gz).unwrap(), b"hello");
    }

    #[test]
    fn truncated_gzip_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[7u8; 1000]).unwrap();
        let bytes = enc.finish().unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_maybe_gzip(&gz).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(err.to_string().contains("x.gz"));
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = read_maybe_gzip(Path::new("/nonexistent/relab/file")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }
}
