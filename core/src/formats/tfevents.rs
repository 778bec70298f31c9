//! TensorBoard event files (`events.out.tfevents.*`) of scalars, written by hand to TensorBoard's record format:
//! each record is its length (u64, little-endian), the masked CRC-32C of those 8 bytes, the data and the masked
//! CRC-32C of the data; the data is an `Event` protocol buffer. Only the fields scalars need are encoded: `Event`
//! {1: wall_time double, 2: step int64, 3: file_version string, 5: summary}, `Summary` {1: repeated value},
//! `Summary.Value` {1: tag string, 2: simple_value float}. The one maintained-looking crate for this pulls in an old
//! protobuf runtime and an image library; these few fields are simpler to write than to depend on.

use std::path::Path;

use super::atomic;
use crate::Result;

/// One scalar at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: i64,
    pub value: f32,
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
}

/// Writes `scalars` to `path` (atomically) as an event file: the file-version event first, then one event each.
pub fn write(path: &Path, scalars: &[Scalar]) -> Result<()> {
    let first = scalars.first().map_or(0.0, |s| s.wall_time);
    let mut out = Vec::new();
    record(&mut out, &version_event(first));
    for s in scalars {
        record(&mut out, &scalar_event(s));
    }
    atomic::write_bytes(path, &out)
}

/// The event TensorBoard expects first in a file: `file_version: "brain.Event:2"`.
pub fn version_event(wall_time: f64) -> Vec<u8> {
    let mut e = Vec::new();
    e.push(0x09);
    e.extend_from_slice(&wall_time.to_le_bytes());
    bytes_field(&mut e, 3, b"brain.Event:2");
    e
}

/// The `Event` of one scalar.
pub fn scalar_event(s: &Scalar) -> Vec<u8> {
    let mut value = Vec::new();
    bytes_field(&mut value, 1, s.tag.as_bytes());
    value.push(2 << 3 | 5);
    value.extend_from_slice(&s.value.to_le_bytes());
    let mut summary = Vec::new();
    bytes_field(&mut summary, 1, &value);
    let mut e = Vec::new();
    e.push(1 << 3 | 1);
    e.extend_from_slice(&s.wall_time.to_le_bytes());
    e.push(2 << 3);
    varint(&mut e, s.step as u64);
    bytes_field(&mut e, 5, &summary);
    e
}

/// Appends one framed record of `data`.
pub fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table lookup per byte.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

/// TensorFlow's mask, so that a CRC stored inside CRC'd data does not look like one.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_of_the_standard_check_string_and_its_mask() {
        // The check value of CRC-32C (RFC 3720's parameters) and the empty string's.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // Rotated right by 15 bits: 0xE3069283 >> 15 = 0x1C60D, 0xE3069283 << 17 = 0x25060000 (mod 2^32).
        let c: u32 = 0xE306_9283;
        assert_eq!(c >> 15, 0x1_C60D);
        assert_eq!(c << 17, 0x2506_0000);
        assert_eq!(c.rotate_right(15), 0x2507_C60D);
        assert_eq!(masked_crc32c(b"123456789"), 0x2507_C60Du32.wrapping_add(0xA282_EAD8));
    }

    #[test]
    fn a_scalar_event_is_the_protocol_buffer_written_out_by_hand() {
        let s = Scalar { tag: "a".into(), step: 3, value: 2.0, wall_time: 1.5 };
        let expected = [
            0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, // wall_time 1.5
            0x10, 0x03, // step 3
            0x2A, 10, // summary, 10 bytes
            0x0A, 8, // value, 8 bytes
            0x0A, 1, b'a', // tag "a"
            0x15, 0, 0, 0, 0x40, // simple_value 2.0f
        ];
        assert_eq!(scalar_event(&s), expected);
        // A negative step is ten bytes of two's complement varint; a long tag's length takes two bytes.
        let long = Scalar { tag: "x".repeat(200), step: -1, value: 0.0, wall_time: 0.0 };
        let e = scalar_event(&long);
        assert_eq!(&e[9..20], &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        // Value: tag 1+2+200 bytes and simple_value 5 = 208 (varint 0xD0 0x01); summary: 1+2+208 = 211 (0xD3 0x01).
        assert_eq!(&e[20..26], &[0x2A, 0xD3, 0x01, 0x0A, 0xD0, 0x01]);
    }

    #[test]
    fn a_record_frames_its_data_with_length_and_masked_crcs() {
        let mut out = Vec::new();
        record(&mut out, b"abc");
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[8..12], &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(&out[15..], &masked_crc32c(b"abc").to_le_bytes());
        // CRC-32C("abc") = 0x364B3FB7 (a published check value).
        assert_eq!(crc32c(b"abc"), 0x364B_3FB7);
    }
}
