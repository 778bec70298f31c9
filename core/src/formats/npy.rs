//! NumPy `.npy` files (format 1.0/2.0/3.0), the arrays every artifact is stored in.
//!
//! Reading accepts what `numpy.save` writes for the dtypes relab uses: `f4`/`f8` as floats, `i1`…`i8`, `u1`…`u8` and
//! `b1` as integers, either byte order, C or Fortran order (returned row-major). Writing produces exactly the bytes
//! `numpy.save` writes for a C-order `<f4` or `<i8` array (format 1.0, header padded to 64 bytes), atomically.
//! Parsing works on any reader, so [`parse_f32`]/[`parse_i64`] read arrays held in memory (e.g. `.npz` members).
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::atomic;
use crate::{Error, Result};

/// An array read from (or to be written to) a `.npy` file or an `.npz` member: floats as `f32`, integers and booleans as `i64`,
/// row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    I64 { shape: Vec<usize>, data: Vec<i64> },
}

impl NpyArray {
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F32 { shape, .. } | NpyArray::I64 { shape, .. } => shape,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyArray::F32 { data, .. } => data.len(),
            NpyArray::I64 { data, .. } => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numpy dtype it is written as.
    pub fn descr(&self) -> &'static str {
        match self {
            NpyArray::F32 { .. } => "<f4",
            NpyArray::I64 { .. } => "<i8",
        }
    }

    /// Parses the bytes of a `.npy` file of any supported dtype; `path` only names the source in error messages.
    pub fn from_npy_bytes(path: &Path, bytes: &[u8]) -> Result<NpyArray> {
        decode_any(&mut &bytes[..], bytes.len() as u64).map_err(|f| f.into_error(path, ""))
    }

    pub(super) fn write_npy(&self, w: &mut dyn Write) -> std::io::Result<()> {
        match self {
            NpyArray::F32 { shape, data } => write_f32_to(w, shape, data),
            NpyArray::I64 { shape, data } => write_i64_to(w, shape, data),
        }
    }

    pub(super) fn shape_ok(&self) -> bool {
        self.shape().iter().try_fold(1usize, |a, &d| a.checked_mul(d)) == Some(self.len())
    }
}

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the data to this many bytes.
const ARRAY_ALIGN: usize = 64;
/// numpy leaves room in the header for the growing axis to reach this many digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
const CHUNK: usize = 1 << 16;

/// Writes a little-endian `<f4` array of `shape`, atomically.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    check_len(path, shape, data.len())?;
    atomic::write_with(path, |w| write_f32_to(w, shape, data))
}

/// Writes a little-endian `<i8` array of `shape`, atomically.
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<()> {
    check_len(path, shape, data.len())?;
    atomic::write_with(path, |w| write_i64_to(w, shape, data))
}

/// Reads a floating array (`f4` or `f8`, either byte order, C or Fortran order) as row-major `f32` (`f8` values are
/// rounded to the nearest `f32`).
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let (mut r, len) = open(path)?;
    read_f32_from(&mut r, len).map_err(|f| f.into_error(path, ""))
}

/// Reads an integer array (any signed/unsigned width, either byte order) as row-major `i64`.
pub fn read_i64(path: &Path) -> Result<(Vec<usize>, Vec<i64>)> {
    let (mut r, len) = open(path)?;
    read_i64_from(&mut r, len).map_err(|f| f.into_error(path, ""))
}

/// Reads only the header of a `.npy` file: its dtype, order and shape.
pub fn read_header(path: &Path) -> Result<Header> {
    let (mut r, len) = open(path)?;
    decode_header(&mut r, len).map_err(|f| f.into_error(path, ""))
}

/// [`read_f32`] on the bytes of a `.npy` file held in memory; `path` only names the source in error messages.
pub fn parse_f32(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>)> {
    read_f32_from(&mut &bytes[..], bytes.len() as u64).map_err(|f| f.into_error(path, ""))
}

/// [`read_i64`] on the bytes of a `.npy` file held in memory; `path` only names the source in error messages.
pub fn parse_i64(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<i64>)> {
    read_i64_from(&mut &bytes[..], bytes.len() as u64).map_err(|f| f.into_error(path, ""))
}

/// The bytes `numpy.save` writes for a C-order `<f4` array (panics if `shape` does not hold `data.len()` values).
pub fn to_bytes_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    write_f32_to(&mut out, shape, data).expect("shape must hold exactly data.len() values");
    out
}

/// The bytes `numpy.save` writes for a C-order `<i8` array (panics if `shape` does not hold `data.len()` values).
pub fn to_bytes_i64(shape: &[usize], data: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    write_i64_to(&mut out, shape, data).expect("shape must hold exactly data.len() values");
    out
}

/// What a `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version, `(1, 0)`, `(2, 0)` or `(3, 0)`.
    pub version: (u8, u8),
    /// The dtype as numpy spells it, e.g. `<f4`.
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Where the data starts in the file.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements (1 for a 0-d array); `None` if the shape's product overflows.
    pub fn count(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// A float dtype relab reads (`f4`, `f8`).
    pub fn is_float(&self) -> bool {
        matches!(Dtype::parse(&self.descr), Some(Dtype { kind: Kind::Float, .. }))
    }

    /// An integer or boolean dtype relab reads.
    pub fn is_integer(&self) -> bool {
        matches!(Dtype::parse(&self.descr), Some(Dtype { kind: Kind::Int | Kind::Uint | Kind::Bool, .. }))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Internals shared with npz.rs
// ---------------------------------------------------------------------------------------------------------------

/// Why decoding failed, before it is tied to a path.
#[derive(Debug)]
pub(crate) enum Fail {
    Io(io::Error),
    Format(String),
}

impl Fail {
    /// `context` prefixes format messages (e.g. "member `arr_0.npy`: ").
    pub(crate) fn into_error(self, path: &Path, context: &str) -> Error {
        match self {
            Fail::Io(e) if context.is_empty() => Error::io(path, e),
            Fail::Io(e) => Error::format(path, format!("{context}{e}")),
            Fail::Format(m) => Error::format(path, format!("{context}{m}")),
        }
    }
}

fn format_fail(msg: impl Into<String>) -> Fail {
    Fail::Format(msg.into())
}

fn open(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    Ok((BufReader::with_capacity(CHUNK, file), len))
}

fn check_len(path: &Path, shape: &[usize], len: usize) -> Result<()> {
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) if n == len => Ok(()),
        _ => Err(Error::format(path, format!("cannot write an array of shape {shape:?} from {len} values"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Dtype> {
        let mut chars = descr.chars();
        let order = chars.next()?;
        let big_endian = match order {
            '<' | '|' => false,
            '>' => true,
            '=' => cfg!(target_endian = "big"),
            _ => return None,
        };
        let kind = match chars.next()? {
            'b' => Kind::Bool,
            'i' => Kind::Int,
            'u' => Kind::Uint,
            'f' => Kind::Float,
            _ => return None,
        };
        let size: usize = chars.as_str().parse().ok()?;
        let ok = match kind {
            Kind::Bool => size == 1,
            Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
            Kind::Float => matches!(size, 4 | 8),
        };
        ok.then_some(Dtype { kind, size, big_endian })
    }
}

/// Reads and checks the magic string, version and header dictionary. `available` is the total length of the source.
pub(crate) fn decode_header(r: &mut dyn Read, available: u64) -> Result<Header, Fail> {
    if available < 10 {
        return Err(format_fail(format!(
            "not a .npy file: {available} bytes, too short for the magic string, version and header length"
        )));
    }
    let mut pre = [0u8; 8];
    read_exact(r, &mut pre, "the magic string")?;
    if &pre[..6] != MAGIC {
        return Err(format_fail(format!(
            "not a .npy file: expected the magic string \\x93NUMPY, found {:?}",
            String::from_utf8_lossy(&pre[..6])
        )));
    }
    let version = (pre[6], pre[7]);
    let (len_bytes, utf8) = match version.0 {
        1 => (2usize, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(format_fail(format!(
                "unsupported .npy format version {}.{} (relab reads 1.0, 2.0 and 3.0)",
                version.0, version.1
            )));
        }
    };
    let mut lb = [0u8; 4];
    read_exact(r, &mut lb[..len_bytes], "the header length")?;
    let header_len = u32::from_le_bytes(lb) as usize;
    let data_offset = 8 + len_bytes + header_len;
    if (data_offset as u64) > available {
        return Err(format_fail(format!(
            "truncated: the header claims {header_len} bytes but the file holds only {available} bytes in all"
        )));
    }
    let mut raw = vec![0u8; header_len];
    read_exact(r, &mut raw, "the header")?;
    let text: String = if utf8 {
        String::from_utf8(raw).map_err(|_| format_fail("the header of a version 3.0 file is not valid UTF-8"))?
    } else {
        raw.iter().map(|&b| b as char).collect() // latin-1
    };
    let dict = parse_header_dict(&text)
        .map_err(|m| format_fail(format!("cannot parse the header {:?}: {m}", text.trim_end())))?;
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (k, v) in dict {
        match (k.as_str(), v) {
            ("descr", Lit::Str(s)) => descr = Some(s),
            ("descr", other) => {
                return Err(format_fail(format!(
                    "structured or unusual dtype {other:?} is not supported (expected a plain numeric dtype such as '<f4')"
                )));
            }
            ("fortran_order", Lit::Bool(b)) => fortran_order = Some(b),
            ("fortran_order", other) => {
                return Err(format_fail(format!("'fortran_order' must be True or False, found {other:?}")));
            }
            ("shape", Lit::Tuple(items) | Lit::List(items)) => {
                let dims = items
                    .into_iter()
                    .map(|d| match d {
                        Lit::Int(n) if n >= 0 => usize::try_from(n).ok(),
                        _ => None,
                    })
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format_fail("'shape' must be a tuple of non-negative integers"))?;
                shape = Some(dims);
            }
            ("shape", other) => {
                return Err(format_fail(format!("'shape' must be a tuple, found {other:?}")));
            }
            _ => {}
        }
    }
    let missing = |k: &str| format_fail(format!("the header has no '{k}' key"));
    Ok(Header {
        version,
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
        data_offset,
    })
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<(), Fail> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            format_fail(format!("truncated while reading {what}"))
        } else {
            Fail::Io(e)
        }
    })
}

/// Checks the data length against the header and returns the element count.
fn data_count(h: &Header, dt: Dtype, available: u64) -> Result<usize, Fail> {
    let count =
        h.count().ok_or_else(|| format_fail(format!("shape {:?} has more elements than memory can hold", h.shape)))?;
    let need = count
        .checked_mul(dt.size)
        .ok_or_else(|| format_fail(format!("shape {:?} has more bytes than memory can hold", h.shape)))?;
    let have = available.saturating_sub(h.data_offset as u64);
    if have < need as u64 {
        return Err(format_fail(format!(
            "truncated: shape {:?} of '{}' needs {need} data bytes, found {have}",
            h.shape, h.descr
        )));
    }
    if have > need as u64 {
        return Err(format_fail(format!(
            "{} unexpected bytes after the data of shape {:?} of '{}' (is the header's shape wrong?)",
            have - need as u64,
            h.shape,
            h.descr
        )));
    }
    Ok(count)
}

/// Reads `count` items of `N` bytes each, converting with `conv` (which may reject a value).
fn read_items<T, const N: usize>(
    r: &mut dyn Read,
    count: usize,
    conv: impl Fn([u8; N]) -> Result<T, String>,
) -> Result<Vec<T>, Fail> {
    let mut out = Vec::with_capacity(count);
    let per_chunk = (CHUNK / N).max(1);
    let mut buf = vec![0u8; per_chunk * N];
    let mut left = count;
    while left > 0 {
        let n = left.min(per_chunk);
        read_exact(r, &mut buf[..n * N], "the data")?;
        for item in buf[..n * N].chunks_exact(N) {
            let bytes: [u8; N] = item.try_into().expect("chunks_exact yields N bytes");
            out.push(conv(bytes).map_err(Fail::Format)?);
        }
        left -= n;
    }
    Ok(out)
}

macro_rules! num {
    ($t:ty, $be:expr, $b:expr) => {
        if $be { <$t>::from_be_bytes($b) } else { <$t>::from_le_bytes($b) }
    };
}

pub(crate) fn decode_f32_data(r: &mut dyn Read, h: &Header, available: u64) -> Result<Vec<f32>, Fail> {
    let dt = match Dtype::parse(&h.descr) {
        Some(dt @ Dtype { kind: Kind::Float, .. }) => dt,
        _ => {
            return Err(format_fail(format!(
                "expected a float array ('<f4', '>f4', '<f8' or '>f8'), found dtype '{}'",
                h.descr
            )));
        }
    };
    let count = data_count(h, dt, available)?;
    let be = dt.big_endian;
    let data = match dt.size {
        4 => read_items::<f32, 4>(r, count, |b| Ok(num!(f32, be, b)))?,
        _ => read_items::<f32, 8>(r, count, |b| Ok(num!(f64, be, b) as f32))?,
    };
    Ok(if h.fortran_order { fortran_to_c(&h.shape, data) } else { data })
}

pub(crate) fn decode_i64_data(r: &mut dyn Read, h: &Header, available: u64) -> Result<Vec<i64>, Fail> {
    let dt = match Dtype::parse(&h.descr) {
        Some(dt @ Dtype { kind: Kind::Int | Kind::Uint | Kind::Bool, .. }) => dt,
        _ => {
            return Err(format_fail(format!(
                "expected an integer array (i1…i8, u1…u8 or b1, either byte order), found dtype '{}'",
                h.descr
            )));
        }
    };
    let count = data_count(h, dt, available)?;
    let be = dt.big_endian;
    let data = match (dt.kind, dt.size) {
        (Kind::Bool, _) => read_items::<i64, 1>(r, count, |b| Ok((b[0] != 0) as i64))?,
        (Kind::Int, 1) => read_items::<i64, 1>(r, count, |b| Ok(b[0] as i8 as i64))?,
        (Kind::Uint, 1) => read_items::<i64, 1>(r, count, |b| Ok(b[0] as i64))?,
        (Kind::Int, 2) => read_items::<i64, 2>(r, count, |b| Ok(num!(i16, be, b) as i64))?,
        (Kind::Uint, 2) => read_items::<i64, 2>(r, count, |b| Ok(num!(u16, be, b) as i64))?,
        (Kind::Int, 4) => read_items::<i64, 4>(r, count, |b| Ok(num!(i32, be, b) as i64))?,
        (Kind::Uint, 4) => read_items::<i64, 4>(r, count, |b| Ok(num!(u32, be, b) as i64))?,
        (Kind::Int, _) => read_items::<i64, 8>(r, count, |b| Ok(num!(i64, be, b)))?,
        (Kind::Uint, _) => read_items::<i64, 8>(r, count, |b| {
            let v = num!(u64, be, b);
            i64::try_from(v).map_err(|_| format!("value {v} of '{}' does not fit in a signed 64-bit integer", h.descr))
        })?,
        (Kind::Float, _) => unreachable!("excluded above"),
    };
    Ok(if h.fortran_order { fortran_to_c(&h.shape, data) } else { data })
}

fn read_f32_from(r: &mut dyn Read, available: u64) -> Result<(Vec<usize>, Vec<f32>), Fail> {
    let h = decode_header(r, available)?;
    let data = decode_f32_data(r, &h, available)?;
    Ok((h.shape, data))
}

fn read_i64_from(r: &mut dyn Read, available: u64) -> Result<(Vec<usize>, Vec<i64>), Fail> {
    let h = decode_header(r, available)?;
    let data = decode_i64_data(r, &h, available)?;
    Ok((h.shape, data))
}

/// Reads a float array as [`NpyArray::F32`] and an integer/bool array as [`NpyArray::I64`].
pub(crate) fn decode_any(r: &mut dyn Read, available: u64) -> Result<NpyArray, Fail> {
    let h = decode_header(r, available)?;
    if h.is_float() {
        let data = decode_f32_data(r, &h, available)?;
        Ok(NpyArray::F32 { shape: h.shape, data })
    } else if h.is_integer() {
        let data = decode_i64_data(r, &h, available)?;
        Ok(NpyArray::I64 { shape: h.shape, data })
    } else {
        Err(format_fail(format!(
            "unsupported dtype '{}' (relab reads f4, f8, i1…i8, u1…u8 and b1 in either byte order)",
            h.descr
        )))
    }
}

/// Reorders column-major (Fortran) data into row-major (C) order.
fn fortran_to_c<T: Copy>(shape: &[usize], data: Vec<T>) -> Vec<T> {
    let d = shape.len();
    if d < 2 || data.is_empty() {
        return data;
    }
    let mut strides = vec![1usize; d];
    for i in (0..d - 1).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let mut out = vec![data[0]; data.len()];
    let mut idx = vec![0usize; d];
    let mut off = 0usize;
    for &v in &data {
        out[off] = v;
        // Advance the multi-index with the first axis fastest, as Fortran order stores it.
        for k in 0..d {
            idx[k] += 1;
            off += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            off -= strides[k] * shape[k];
            idx[k] = 0;
        }
    }
    out
}

/// The header numpy writes for a C-order array of `descr` and `shape` (format 1.0, or 2.0 if it would not fit).
fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.extend(std::iter::repeat_n(' ', GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    let hlen = dict.len() + 1;
    let wrap = |len_bytes: usize| ARRAY_ALIGN - ((MAGIC.len() + 2 + len_bytes + hlen) % ARRAY_ALIGN);
    let (major, len_bytes) = if hlen + wrap(2) <= u16::MAX as usize { (1u8, 2usize) } else { (2, 4) };
    let padlen = wrap(len_bytes);
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + len_bytes + hlen + padlen);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[major, 0]);
    out.extend_from_slice(&((hlen + padlen) as u32).to_le_bytes()[..len_bytes]);
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padlen));
    out.push(b'\n');
    out
}

fn write_items<T: Copy, const N: usize>(
    w: &mut dyn Write,
    descr: &str,
    shape: &[usize],
    data: &[T],
    to_le: impl Fn(T) -> [u8; N],
) -> io::Result<()> {
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot write an array of shape {shape:?} from {} values", data.len()),
        ));
    }
    w.write_all(&header_bytes(descr, shape))?;
    let mut buf = Vec::with_capacity(CHUNK);
    for chunk in data.chunks(CHUNK / N) {
        buf.clear();
        for &v in chunk {
            buf.extend_from_slice(&to_le(v));
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Streams a `<f4` `.npy` file to `w`.
pub(crate) fn write_f32_to(w: &mut dyn Write, shape: &[usize], data: &[f32]) -> io::Result<()> {
    write_items(w, "<f4", shape, data, f32::to_le_bytes)
}

/// Streams a `<i8` `.npy` file to `w`.
pub(crate) fn write_i64_to(w: &mut dyn Write, shape: &[usize], data: &[i64]) -> io::Result<()> {
    write_items(w, "<i8", shape, data, i64::to_le_bytes)
}

// ---------------------------------------------------------------------------------------------------------------
// The header dictionary: a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

struct LitParser {
    chars: Vec<char>,
    pos: usize,
}

fn parse_header_dict(text: &str) -> Result<Vec<(String, Lit)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = LitParser { chars, pos: 0 };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("unexpected text after the dictionary at character {}", p.pos));
    }
    match v {
        Lit::Dict(items) => items
            .into_iter()
            .map(|(k, v)| match k {
                Lit::Str(k) => Ok((k, v)),
                other => Err(format!("dictionary key {other:?} is not a string")),
            })
            .collect(),
        other => Err(format!("expected a dictionary, found {other:?}")),
    }
}

impl LitParser {
    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!("expected '{c}', found '{x}' at character {}", self.pos)),
            None => Err(format!("expected '{c}', found the end")),
        }
    }

    /// Items up to `close`, separated by commas, a trailing comma allowed.
    fn seq(&mut self, close: char, depth: usize) -> Result<Vec<Lit>, String> {
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(c) if c == close => {}
                Some(c) => {
                    return Err(format!("expected ',' or '{close}', found '{c}' at character {}", self.pos));
                }
                None => return Err(format!("expected '{close}', found the end")),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > 32 {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            None => Err("unexpected end".into()),
            Some('{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some('}') {
                        self.pos += 1;
                        return Ok(Lit::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    self.expect(':')?;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some('}') => {}
                        Some(c) => {
                            return Err(format!("expected ',' or '}}', found '{c}' at character {}", self.pos));
                        }
                        None => return Err("expected '}', found the end".into()),
                    }
                }
            }
            Some('(') => {
                self.pos += 1;
                Ok(Lit::Tuple(self.seq(')', depth)?))
            }
            Some('[') => {
                self.pos += 1;
                Ok(Lit::List(self.seq(']', depth)?))
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.chars.get(self.pos).copied() {
                        None => return Err("unterminated string".into()),
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(Lit::Str(s));
                        }
                        Some('\\') => {
                            let c = self.chars.get(self.pos + 1).copied().ok_or("unterminated string")?;
                            s.push(c);
                            self.pos += 2;
                        }
                        Some(c) => {
                            s.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.chars.len() && self.chars[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                // Python 2 numpy wrote longs as `3L`.
                if matches!(self.chars.get(self.pos), Some('L' | 'l')) {
                    self.pos += 1;
                }
                text.parse().map(Lit::Int).map_err(|_| format!("bad integer {text:?}"))
            }
            Some(c) if c.is_alphabetic() => {
                let start = self.pos;
                while self.pos < self.chars.len()
                    && (self.chars[self.pos].is_alphanumeric() || self.chars[self.pos] == '_')
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    _ => Err(format!("unexpected word {word:?}")),
                }
            }
            Some(c) => Err(format!("unexpected '{c}' at character {}", self.pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made .npy file: `header` is the dictionary text, padded here like numpy does.
    fn handmade(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let len_bytes = if version == 1 { 2 } else { 4 };
        let mut h = header.to_string();
        while !(8 + len_bytes + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        out.extend_from_slice(&(h.len() as u32).to_le_bytes()[..len_bytes]);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn p() -> &'static Path {
        Path::new("mem.npy")
    }

    #[test]
    fn round_trips_f32_and_i64() {
        let dir = tempfile::tempdir().unwrap();
        let shapes: &[&[usize]] = &[&[], &[0], &[5], &[2, 3], &[2, 0, 4], &[3, 1, 2, 2], &[100_000]];
        for (k, shape) in shapes.iter().enumerate() {
            let n: usize = shape.iter().product();
            let f: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.25).collect();
            let i: Vec<i64> = (0..n).map(|i| i as i64 * 7 - (1 << 40)).collect();
            let fp = dir.path().join(format!("f{k}.npy"));
            let ip = dir.path().join(format!("i{k}.npy"));
            write_f32(&fp, shape, &f).unwrap();
            write_i64(&ip, shape, &i).unwrap();
            assert_eq!(read_f32(&fp).unwrap(), (shape.to_vec(), f.clone()));
            assert_eq!(read_i64(&ip).unwrap(), (shape.to_vec(), i.clone()));
            let bytes = std::fs::read(&fp).unwrap();
            let h = read_header(&fp).unwrap();
            assert_eq!(h.data_offset % 64, 0);
            assert_eq!(h.version, (1, 0));
            assert_eq!(bytes.len(), h.data_offset + 4 * n);
            assert_eq!(bytes, to_bytes_f32(shape, &f));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(names.iter().all(|n| !n.to_string_lossy().starts_with('.')), "{names:?}");
    }

    #[test]
    fn write_rejects_shape_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let e = write_f32(&path, &[2, 2], &[1.0; 3]).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(!path.exists());
    }

    #[test]
    fn reads_version_2_big_endian_f8() {
        let data: Vec<u8> = [1.5f64, -2.0, 1e10].iter().flat_map(|v| v.to_be_bytes()).collect();
        let bytes = handmade(2, "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", &data);
        assert_eq!(parse_f32(p(), &bytes).unwrap(), (vec![3], vec![1.5, -2.0, 1e10]));
    }

    #[test]
    fn reads_version_3_and_big_endian_f4() {
        let data: Vec<u8> = [0.25f32, 8.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let bytes = handmade(3, "{\"descr\": \">f4\", \"fortran_order\": False, \"shape\": (1, 2)}", &data);
        assert_eq!(parse_f32(p(), &bytes).unwrap(), (vec![1, 2], vec![0.25, 8.0]));
    }

    #[test]
    fn reads_fortran_order() {
        // The 2×3 matrix [[0,1,2],[3,4,5]] stored column-major: 0 3 1 4 2 5.
        let data: Vec<u8> = [0f32, 3., 1., 4., 2., 5.].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = handmade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", &data);
        assert_eq!(parse_f32(p(), &bytes).unwrap(), (vec![2, 3], vec![0., 1., 2., 3., 4., 5.]));

        // 3-D: a[i,j,k] = 100i + 10j + k, shape (2,3,2), stored with i fastest.
        let mut fdata = Vec::new();
        for k in 0..2i64 {
            for j in 0..3 {
                for i in 0..2 {
                    fdata.extend_from_slice(&(100 * i + 10 * j + k).to_be_bytes());
                }
            }
        }
        let bytes = handmade(1, "{'descr': '>i8', 'fortran_order': True, 'shape': (2, 3, 2), }", &fdata);
        let (shape, v) = parse_i64(p(), &bytes).unwrap();
        assert_eq!(shape, vec![2, 3, 2]);
        let expect: Vec<i64> =
            (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| 100 * i + 10 * j + k))).collect();
        assert_eq!(v, expect);
    }

    #[test]
    fn reads_integer_widths_and_bool() {
        let cases: Vec<(&str, Vec<u8>, Vec<i64>)> = vec![
            ("|u1", vec![0, 255, 7], vec![0, 255, 7]),
            ("|i1", vec![0, 255, 7], vec![0, -1, 7]),
            ("|b1", vec![0, 1, 2], vec![0, 1, 1]),
            ("<i2", [-2i16, 300, 0].iter().flat_map(|v| v.to_le_bytes()).collect(), vec![-2, 300, 0]),
            (">u2", [65535u16, 1, 0].iter().flat_map(|v| v.to_be_bytes()).collect(), vec![65535, 1, 0]),
            (">i4", [-5i32, 1 << 30, 0].iter().flat_map(|v| v.to_be_bytes()).collect(), vec![-5, 1 << 30, 0]),
            ("<u4", [u32::MAX, 1, 0].iter().flat_map(|v| v.to_le_bytes()).collect(), vec![u32::MAX as i64, 1, 0]),
            ("<u8", [5u64, 1, 0].iter().flat_map(|v| v.to_le_bytes()).collect(), vec![5, 1, 0]),
        ];
        for (descr, data, expect) in cases {
            let bytes = handmade(1, &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}"), &data);
            assert_eq!(parse_i64(p(), &bytes).unwrap(), (vec![3], expect), "{descr}");
        }
        // A u8 too large for i64 is an error, not a wrap-around.
        let data: Vec<u8> = [u64::MAX].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = handmade(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", &data);
        let e = parse_i64(p(), &bytes).unwrap_err().to_string();
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn python2_long_shapes() {
        let data: Vec<u8> = [1i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = handmade(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }", &data);
        assert_eq!(parse_i64(p(), &bytes).unwrap(), (vec![2], vec![1, 2]));
    }

    #[test]
    fn wrong_dtype_is_a_format_error() {
        let f = to_bytes_f32(&[2], &[1.0, 2.0]);
        let e = parse_i64(p(), &f).unwrap_err();
        assert!(matches!(e, Error::Format { .. }));
        let msg = e.to_string();
        assert!(msg.contains("mem.npy") && msg.contains("integer") && msg.contains("'<f4'"), "{msg}");
        let i = to_bytes_i64(&[2], &[1, 2]);
        let msg = parse_f32(p(), &i).unwrap_err().to_string();
        assert!(msg.contains("float") && msg.contains("'<i8'"), "{msg}");
        let u = handmade(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", &[0; 12]);
        assert!(parse_f32(p(), &u).unwrap_err().to_string().contains("'<U3'"));
        let s = handmade(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", &[0; 4]);
        assert!(parse_f32(p(), &s).unwrap_err().to_string().contains("structured"));
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() {
        let good = to_bytes_f32(&[4, 4], &[1.0; 16]);
        for cut in [0, 3, 9, 10, 40, good.len() - 64, good.len() - 1] {
            let e = parse_f32(p(), &good[..cut]).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "cut {cut}: {e}");
        }
        let msg = parse_f32(p(), &good[..good.len() - 1]).unwrap_err().to_string();
        assert!(msg.contains("truncated") && msg.contains("64 data bytes"), "{msg}");
        let mut extra = good.clone();
        extra.push(0);
        assert!(parse_f32(p(), &extra).unwrap_err().to_string().contains("unexpected bytes"));
        let mut bad_magic = good.clone();
        bad_magic[1] = b'X';
        assert!(parse_f32(p(), &bad_magic).unwrap_err().to_string().contains("magic"));
        let mut bad_version = good.clone();
        bad_version[6] = 9;
        assert!(parse_f32(p(), &bad_version).unwrap_err().to_string().contains("version 9.0"));
        let garbled = handmade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", &[0; 8]);
        assert!(parse_f32(p(), &garbled).unwrap_err().to_string().contains("cannot parse the header"));
        let missing = handmade(1, "{'descr': '<f4', 'shape': (2,), }", &[0; 8]);
        assert!(parse_f32(p(), &missing).unwrap_err().to_string().contains("fortran_order"));
        let huge = handmade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", &[]);
        assert!(matches!(parse_f32(p(), &huge).unwrap_err(), Error::Format { .. }));

        // The same on a real file, and a missing file is an I/O error.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.npy");
        std::fs::write(&path, &good[..100]).unwrap();
        let e = read_f32(&path).unwrap_err();
        assert!(matches!(e, Error::Format { .. }) && e.to_string().contains("cut.npy"), "{e}");
        assert!(matches!(read_i64(&dir.path().join("none.npy")).unwrap_err(), Error::Io { .. }));
    }

    #[test]
    fn no_panic_on_damaged_bytes() {
        let good = to_bytes_i64(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        for cut in 0..good.len() {
            assert!(parse_i64(p(), &good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        for pos in 0..good.len() {
            for x in [0x01u8, 0x20, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[pos] ^= x;
                let _ = parse_i64(p(), &bad);
                let _ = parse_f32(p(), &bad);
            }
        }
    }

    #[test]
    fn matches_numpy_bytes() {
        // python3 -c "import numpy as np, io; b = io.BytesIO(); np.save(b, np.arange(6, dtype='<f4').reshape(2, 3));
        //             print(list(b.getvalue()))"
        let expect_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \n";
        let bytes = to_bytes_f32(&[2, 3], &[0., 1., 2., 3., 4., 5.]);
        assert_eq!(&bytes[..10], b"\x93NUMPY\x01\x00\x76\x00");
        assert_eq!(std::str::from_utf8(&bytes[10..128]).unwrap(), expect_header);
        let bytes = to_bytes_i64(&[], &[42]);
        assert_eq!(
            std::str::from_utf8(&bytes[10..128]).unwrap().trim_end(),
            "{'descr': '<i8', 'fortran_order': False, 'shape': (), }"
        );
    }

    #[test]
    fn header_dict_parser() {
        let d = parse_header_dict("{'a': (1, 2,), \"b\": [True, None], 'c': {'x': -3}, }").unwrap();
        assert_eq!(d[0], ("a".into(), Lit::Tuple(vec![Lit::Int(1), Lit::Int(2)])));
        assert_eq!(d[1], ("b".into(), Lit::List(vec![Lit::Bool(true), Lit::None])));
        assert_eq!(d[2], ("c".into(), Lit::Dict(vec![(Lit::Str("x".into()), Lit::Int(-3))])));
        assert!(parse_header_dict("{'a': 1").is_err());
        assert!(parse_header_dict("[1]").is_err());
        assert!(parse_header_dict(&"(".repeat(100)).is_err());
    }
}
