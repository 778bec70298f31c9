//! Test support: torchvision's `resnet50().state_dict()` with random values and its real key names and shapes,
//! written as PyTorch writes it (`torch.save`: a zip of `archive/data.pkl` + one file per storage) and as
//! safetensors. Written from the torchvision definition, independently of the plugin's key mapping.
#![allow(dead_code)]

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One entry of a state dict.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Entry {
    pub fn f32s(&self) -> &[f32] {
        match &self.data {
            Data::F32(v) => v,
            Data::I64(_) => panic!("{} holds integers", self.name),
        }
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Little-endian bytes, as both formats store them.
    fn bytes(&self) -> Vec<u8> {
        match &self.data {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// The entry called `name`.
pub fn entry<'a>(dict: &'a [Entry], name: &str) -> &'a Entry {
    dict.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name}"))
}

/// torchvision's ResNet-50 state dict in its own order (320 entries), with random values: convolutions
/// U(−√(6/fan_in), √(6/fan_in)); batch norms γ ∈ [0.5, 1], β and running means ∈ [−0.1, 0.1], running variances
/// ∈ [0.5, 1.5]; `num_batches_tracked` an int64 scalar; `fc` small.
pub fn resnet50_state_dict(seed: u64) -> Vec<Entry> {
    let mut g = Generator { rng: StdRng::seed_from_u64(seed), dict: Vec::with_capacity(320) };
    g.conv("conv1", [64, 3, 7, 7]);
    g.bn("bn1", 64);
    let mut in_planes = 64;
    for (stage, (planes, blocks)) in [(64, 3), (128, 4), (256, 6), (512, 3)].into_iter().enumerate() {
        for block in 0..blocks {
            let name = format!("layer{}.{block}", stage + 1);
            g.conv(&format!("{name}.conv1"), [planes, in_planes, 1, 1]);
            g.bn(&format!("{name}.bn1"), planes);
            g.conv(&format!("{name}.conv2"), [planes, planes, 3, 3]);
            g.bn(&format!("{name}.bn2"), planes);
            g.conv(&format!("{name}.conv3"), [planes * 4, planes, 1, 1]);
            g.bn(&format!("{name}.bn3"), planes * 4);
            if block == 0 {
                g.conv(&format!("{name}.downsample.0"), [planes * 4, in_planes, 1, 1]);
                g.bn(&format!("{name}.downsample.1"), planes * 4);
            }
            in_planes = planes * 4;
        }
    }
    g.uniform("fc.weight", vec![1000, 2048], -0.02, 0.02);
    g.uniform("fc.bias", vec![1000], -0.02, 0.02);
    g.dict
}

struct Generator {
    rng: StdRng,
    dict: Vec<Entry>,
}

impl Generator {
    fn uniform(&mut self, name: &str, shape: Vec<usize>, lo: f32, hi: f32) {
        let n = shape.iter().product();
        let values = (0..n).map(|_| self.rng.random_range(lo..hi)).collect();
        self.dict.push(Entry { name: name.to_string(), shape, data: Data::F32(values) });
    }

    fn conv(&mut self, name: &str, shape: [usize; 4]) {
        let bound = (6.0 / (shape[1] * shape[2] * shape[3]) as f32).sqrt();
        self.uniform(&format!("{name}.weight"), shape.to_vec(), -bound, bound);
    }

    fn bn(&mut self, name: &str, channels: usize) {
        self.uniform(&format!("{name}.weight"), vec![channels], 0.5, 1.0);
        self.uniform(&format!("{name}.bias"), vec![channels], -0.1, 0.1);
        self.uniform(&format!("{name}.running_mean"), vec![channels], -0.1, 0.1);
        self.uniform(&format!("{name}.running_var"), vec![channels], 0.5, 1.5);
        let name = format!("{name}.num_batches_tracked");
        self.dict.push(Entry { name, shape: vec![], data: Data::I64(vec![4242]) });
    }
}

/// `dict` as a safetensors file: a little-endian u64 header length, the JSON header (names, dtypes, shapes, byte
/// ranges; padded with spaces to 8 bytes), then the data.
pub fn write_safetensors(path: &Path, dict: &[Entry]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for e in dict {
        let bytes = e.bytes();
        let dtype = match e.data {
            Data::F32(_) => "F32",
            Data::I64(_) => "I64",
        };
        let range = [data.len(), data.len() + bytes.len()];
        header.insert(e.name.clone(), serde_json::json!({ "dtype": dtype, "shape": e.shape, "data_offsets": range }));
        data.extend(bytes);
    }
    let mut header = serde_json::to_vec(&header).unwrap();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header);
    file.extend(data);
    std::fs::write(path, file).unwrap();
}

/// `dict` as `torch.save(state_dict, path)` writes it (PyTorch ≥ 1.6): a zip archive, entries stored uncompressed,
/// with `archive/data.pkl` (the pickle, protocol 2), `archive/byteorder`, `archive/data/<key>` (one storage per
/// tensor) and `archive/version`.
pub fn write_pth(path: &Path, dict: &[Entry]) {
    let mut entries = vec![("archive/data.pkl".to_string(), pickle_state_dict(dict))];
    entries.push(("archive/byteorder".into(), b"little".to_vec()));
    for (key, e) in dict.iter().enumerate() {
        entries.push((format!("archive/data/{key}"), e.bytes()));
    }
    entries.push(("archive/version".into(), b"3\n".to_vec()));
    std::fs::write(path, stored_zip(&entries)).unwrap();
}

/// The pickle `torch.save` writes for a state dict: an `OrderedDict` of
/// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)` calls, each storage
/// a persistent id `('storage', torch.FloatStorage, key, 'cpu', numel)`, then the dict's `_metadata` attribute set
/// with `BUILD`. Globals are memoised and fetched again, as Python's pickler does.
fn pickle_state_dict(dict: &[Entry]) -> Vec<u8> {
    let mut p = Pickle::default();
    p.out.extend([0x80, 2]); // PROTO 2
    p.global("collections", "OrderedDict");
    p.out.extend(b")R"); // OrderedDict()
    p.out.push(b'('); // MARK
    for (key, e) in dict.iter().enumerate() {
        p.string(&e.name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.out.push(b'('); // MARK: the arguments
        p.out.push(b'('); // MARK: the persistent id
        p.string("storage");
        match e.data {
            Data::F32(_) => p.global("torch", "FloatStorage"),
            Data::I64(_) => p.global("torch", "LongStorage"),
        }
        p.string(&key.to_string());
        p.string("cpu");
        p.int(e.numel().max(1));
        p.out.extend(b"tQ"); // TUPLE, BINPERSID
        p.int(0); // storage offset
        p.ints(&e.shape);
        let strides: Vec<usize> = (0..e.shape.len()).map(|d| e.shape[d + 1..].iter().product()).collect();
        p.ints(&strides);
        p.out.push(0x89); // NEWFALSE: requires_grad
        p.global("collections", "OrderedDict");
        p.out.extend(b")R"); // backward hooks: OrderedDict()
        p.out.extend(b"tR"); // TUPLE, REDUCE
    }
    p.out.push(b'u'); // SETITEMS
    // state: {'_metadata': OrderedDict([('', {'version': 1})])}, applied with BUILD
    p.out.push(b'}');
    p.string("_metadata");
    p.global("collections", "OrderedDict");
    p.out.extend(b")R(");
    p.string("");
    p.out.push(b'}');
    p.string("version");
    p.int(1);
    p.out.extend(b"sus"); // SETITEM, SETITEMS, SETITEM
    p.out.extend(b"b."); // BUILD, STOP
    p.out
}

#[derive(Default)]
struct Pickle {
    out: Vec<u8>,
    memo: Vec<String>,
}

impl Pickle {
    fn string(&mut self, s: &str) {
        self.out.push(b'X'); // BINUNICODE
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
    }

    fn int(&mut self, v: usize) {
        match v {
            0..=0xff => self.out.extend([b'K', v as u8]),
            0x100..=0xffff => {
                self.out.push(b'M');
                self.out.extend((v as u16).to_le_bytes());
            }
            _ => {
                self.out.push(b'J');
                self.out.extend(i32::try_from(v).unwrap().to_le_bytes());
            }
        }
    }

    /// A tuple of ints (EMPTY_TUPLE when empty).
    fn ints(&mut self, values: &[usize]) {
        if values.is_empty() {
            self.out.push(b')');
            return;
        }
        self.out.push(b'(');
        for &v in values {
            self.int(v);
        }
        self.out.push(b't');
    }

    /// GLOBAL the first time, with BINPUT; BINGET afterwards.
    fn global(&mut self, module: &str, name: &str) {
        let id = format!("{module}\n{name}\n");
        if let Some(index) = self.memo.iter().position(|m| *m == id) {
            self.out.extend([b'h', index as u8]);
            return;
        }
        self.out.push(b'c');
        self.out.extend(id.as_bytes());
        self.out.extend([b'q', self.memo.len() as u8]);
        self.memo.push(id);
    }
}

/// A zip archive of `entries`, stored (no compression), with CRC-32s: local headers and data, then the central
/// directory, then its end record.
fn stored_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    const DOS_DATE_1980_01_01: u16 = 0x21;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let size = u32::try_from(data.len()).unwrap();
        let common = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes()); // version needed
            v.extend(0u16.to_le_bytes()); // flags
            v.extend(0u16.to_le_bytes()); // stored
            v.extend(0u16.to_le_bytes()); // time
            v.extend(DOS_DATE_1980_01_01.to_le_bytes());
            v.extend(crc.to_le_bytes());
            v.extend(size.to_le_bytes()); // compressed
            v.extend(size.to_le_bytes()); // uncompressed
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra field length
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(data);

        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend(0u16.to_le_bytes()); // comment length
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let (directory_at, directory_len) = (out.len() as u32, central.len() as u32);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // this disk, directory disk
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend(directory_len.to_le_bytes());
    out.extend(directory_at.to_le_bytes());
    out.extend(0u16.to_le_bytes()); // comment length
    out
}
