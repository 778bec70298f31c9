//! A small reader for Python pickles, enough for the CIFAR python files: a dict of byte-string keys holding a
//! numpy `uint8` array and lists of ints and strings.
//!
//! The real CIFAR files were written by Python 2's cPickle (protocol 2: strings as `BINSTRING`, the array rebuilt by
//! `numpy.core.multiarray._reconstruct` and then `BUILD` with a state tuple whose last item is the raw bytes).
//! Python 3 writes `bytes` at protocol 2 as `_codecs.encode(<latin-1 text>, 'latin1')`, and numpy 2 names the
//! module `numpy._core`; both are understood, as are the opcodes of protocols 0–5 (except out-of-band buffers),
//! so a file re-saved by a user's Python still loads. Nothing is executed: calls to functions other than the few
//! pure ones rebuilt here (`_codecs.encode`, `bytes`, `set`) are kept as inert [`Object`]s for the caller to read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A value on the pickle machine's stack. Mutable containers are shared (`Rc<RefCell>`), as in Python, so that a
/// memoised list that is appended to later is the same list wherever it is referenced.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Rc<Vec<u8>>),
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    /// Entries in insertion order; keys compared by value on lookup.
    Dict(Entries),
    /// A reference to `module.name`, as `GLOBAL` pushes it.
    Global(Rc<(String, String)>),
    /// The result of calling something (`REDUCE`, `NEWOBJ`), with the state `BUILD` later gave it.
    Object(Rc<RefCell<Object>>),
}

/// A dict's entries, shared like every mutable container.
pub type Entries = Rc<RefCell<Vec<(Value, Value)>>>;

#[derive(Debug, Clone)]
pub struct Object {
    pub callable: Value,
    pub args: Value,
    pub state: Option<Value>,
}

/// A numpy array read out of a pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// numpy's type string with its byte order: `|u1`, `<i8`, ...
    pub dtype: String,
    pub shape: Vec<usize>,
    pub fortran_order: bool,
    pub data: Rc<Vec<u8>>,
}

/// Reads one pickle; the error message says what is wrong and at which byte.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    Machine { bytes, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }.run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl Machine<'_> {
    fn run(mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let op = self.take(1).map_err(|_| format!("pickle ends at byte {at} without a STOP opcode"))?[0];
            match self.step(op) {
                Ok(true) => {
                    return self.pop().map_err(|e| format!("{e} at byte {at}"));
                }
                Ok(false) => {}
                Err(e) => return Err(format!("{e} (opcode {:?} at byte {at})", op as char)),
            }
        }
    }

    /// Executes one opcode; `true` at STOP.
    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'.' => return Ok(true),
            0x80 => {
                let proto = self.take(1)?[0];
                if proto > 5 {
                    return Err(format!("pickle protocol {proto} is newer than 5"));
                }
            }
            0x95 => {
                self.take(8)?; // FRAME: a length hint only
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.stack.push(top);
            }
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'I' => {
                let line = self.line()?;
                let v = match line.as_str() {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    s => Value::Int(s.parse().map_err(|_| format!("bad INT {s:?}"))?),
                };
                self.stack.push(v);
            }
            b'L' => {
                let line = self.line()?;
                let s = line.trim_end_matches('L');
                self.stack.push(Value::Int(s.parse().map_err(|_| format!("LONG {s:?} does not fit 64 bits"))?));
            }
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(v as i64));
            }
            b'K' => {
                let v = self.take(1)?[0];
                self.stack.push(Value::Int(v as i64));
            }
            b'M' => {
                let v = u16::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(v as i64));
            }
            0x8a => {
                let n = self.take(1)?[0] as usize;
                self.long(n)?;
            }
            0x8b => {
                let n = self.len_i32()?;
                self.long(n)?;
            }
            b'F' => {
                let line = self.line()?;
                self.stack.push(Value::Float(line.parse().map_err(|_| format!("bad FLOAT {line:?}"))?));
            }
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.stack.push(Value::Float(v));
            }
            b'S' => {
                let line = self.line()?;
                let b = unquote(&line)?;
                self.stack.push(Value::Bytes(Rc::new(b)));
            }
            b'T' => {
                let n = self.len_i32()?;
                self.push_bytes(n)?;
            }
            b'U' | b'C' => {
                let n = self.take(1)?[0] as usize;
                self.push_bytes(n)?;
            }
            b'B' => {
                let n = u32::from_le_bytes(self.array()?) as usize;
                self.push_bytes(n)?;
            }
            0x8e | 0x96 => {
                let n = self.len_u64()?;
                self.push_bytes(n)?;
            }
            b'V' => {
                let line = self.line()?;
                self.stack.push(Value::Str(line.into()));
            }
            b'X' => {
                let n = u32::from_le_bytes(self.array()?) as usize;
                self.push_str(n)?;
            }
            0x8c => {
                let n = self.take(1)?[0] as usize;
                self.push_str(n)?;
            }
            0x8d => {
                let n = self.len_u64()?;
                self.push_str(n)?;
            }
            b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            b']' | 0x8f => self.stack.push(Value::List(Rc::default())),
            b'l' | 0x91 => {
                let items = self.pop_mark()?;
                self.stack.push(Value::List(Rc::new(RefCell::new(items))));
            }
            b'a' => {
                let v = self.pop()?;
                self.list_target()?.borrow_mut().push(v);
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                self.list_target()?.borrow_mut().extend(items);
            }
            b'}' => self.stack.push(Value::Dict(Rc::default())),
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.stack.push(Value::Dict(Rc::new(RefCell::new(pairs))));
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.dict_target()?.borrow_mut().push((k, v));
            }
            b'u' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.dict_target()?.borrow_mut().extend(pairs);
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.stack.push(Value::Global(Rc::new((module, name))));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => {
                        self.stack.push(Value::Global(Rc::new((m.to_string(), n.to_string()))))
                    }
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(call(callable, args)?);
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(call(callable, args)?);
            }
            b'b' => {
                let state = self.pop()?;
                match self.top()? {
                    Value::Object(o) => o.borrow_mut().state = Some(state),
                    other => return Err(format!("BUILD on a {}", other.kind())),
                }
            }
            b'p' => {
                let id = self.line_u64()?;
                self.put(id)?;
            }
            b'q' => {
                let id = self.take(1)?[0] as u64;
                self.put(id)?;
            }
            b'r' => {
                let id = u32::from_le_bytes(self.array()?) as u64;
                self.put(id)?;
            }
            0x94 => {
                let id = self.memo.len() as u64;
                self.put(id)?;
            }
            b'g' => {
                let id = self.line_u64()?;
                self.get(id)?;
            }
            b'h' => {
                let id = self.take(1)?[0] as u64;
                self.get(id)?;
            }
            b'j' => {
                let id = u32::from_le_bytes(self.array()?) as u64;
                self.get(id)?;
            }
            0x97 | 0x98 => return Err("out-of-band buffers are not supported".into()),
            _ => return Err("unsupported opcode".into()),
        }
        Ok(false)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            format!("pickle truncated: {n} bytes needed at byte {}, file has {}", self.pos, self.bytes.len())
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn len_i32(&mut self) -> Result<usize, String> {
        let n = i32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| format!("negative length {n}"))
    }

    fn len_u64(&mut self) -> Result<usize, String> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| format!("length {n} too large"))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("pickle truncated inside a text argument")?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn line_u64(&mut self) -> Result<u64, String> {
        let l = self.line()?;
        l.parse().map_err(|_| format!("bad memo id {l:?}"))
    }

    fn long(&mut self, n: usize) -> Result<(), String> {
        let b = self.take(n)?;
        if n > 8 {
            return Err(format!("{n}-byte integer does not fit 64 bits"));
        }
        let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 };
        let mut buf = [fill; 8];
        buf[..n].copy_from_slice(b);
        self.stack.push(Value::Int(i64::from_le_bytes(buf)));
        Ok(())
    }

    fn push_bytes(&mut self, n: usize) -> Result<(), String> {
        let b = self.take(n)?.to_vec();
        self.stack.push(Value::Bytes(Rc::new(b)));
        Ok(())
    }

    fn push_str(&mut self, n: usize) -> Result<(), String> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|e| format!("invalid UTF-8 in a string: {e}"))?;
        let v = Value::Str(s.into());
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("stack underflow below a MARK".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn top(&self) -> Result<&Value, String> {
        self.stack.last().ok_or_else(|| "stack underflow".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("no MARK on the stack")?;
        Ok(self.stack.split_off(m))
    }

    fn list_target(&self) -> Result<Rc<RefCell<Vec<Value>>>, String> {
        match self.top()? {
            Value::List(l) => Ok(l.clone()),
            other => Err(format!("append to a {}", other.kind())),
        }
    }

    fn dict_target(&self) -> Result<Entries, String> {
        match self.top()? {
            Value::Dict(d) => Ok(d.clone()),
            other => Err(format!("set an item of a {}", other.kind())),
        }
    }

    fn put(&mut self, id: u64) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(id, v);
        Ok(())
    }

    fn get(&mut self, id: u64) -> Result<(), String> {
        let v = self.memo.get(&id).ok_or_else(|| format!("memo id {id} was never stored"))?.clone();
        self.stack.push(v);
        Ok(())
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of items for a dict".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// Rebuilds the pure built-ins that pickles use to spell plain values; anything else stays an inert object.
fn call(callable: Value, args: Value) -> Result<Value, String> {
    let name = match &callable {
        Value::Global(g) => (g.0.as_str(), g.1.as_str()),
        _ => ("", ""),
    };
    let argv: Vec<Value> = match &args {
        Value::Tuple(t) => t.to_vec(),
        _ => Vec::new(),
    };
    match (name, argv.as_slice()) {
        (("_codecs", "encode"), [Value::Str(s), Value::Str(enc)]) if is_latin1(enc) => {
            Ok(Value::Bytes(Rc::new(latin1(s)?)))
        }
        (("__builtin__" | "builtins", "bytes" | "bytearray"), []) => Ok(Value::Bytes(Rc::default())),
        (("__builtin__" | "builtins", "bytes" | "bytearray"), [Value::Str(s), Value::Str(enc)]) if is_latin1(enc) => {
            Ok(Value::Bytes(Rc::new(latin1(s)?)))
        }
        (("__builtin__" | "builtins", "bytes" | "bytearray"), [Value::Bytes(b)]) => Ok(Value::Bytes(b.clone())),
        (("__builtin__" | "builtins", "set" | "frozenset"), [Value::List(l)]) => Ok(Value::List(l.clone())),
        _ => Ok(Value::Object(Rc::new(RefCell::new(Object { callable, args, state: None })))),
    }
}

fn is_latin1(enc: &str) -> bool {
    matches!(enc.to_ascii_lowercase().as_str(), "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1")
}

fn latin1(s: &str) -> Result<Vec<u8>, String> {
    s.chars().map(|c| u8::try_from(c as u32).map_err(|_| format!("character {c:?} is not latin-1"))).collect()
}

/// The bytes of a protocol-0 `STRING` argument: a quoted Python literal with backslash escapes.
fn unquote(line: &str) -> Result<Vec<u8>, String> {
    let inner = line
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| line.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
        .ok_or_else(|| format!("STRING argument {line:?} is not quoted"))?;
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1).ok_or("dangling backslash")?;
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let hex = inner.get(i..i + 2).ok_or("short \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x escape {hex:?}"))?);
                i += 2;
            }
            _ => return Err(format!("unsupported escape \\{}", e as char)),
        }
    }
    Ok(out)
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Object(_) => "object",
        }
    }

    /// The dict entry under `key`, whether the file spelt its keys as bytes (Python 2, `encoding='bytes'`) or text.
    pub fn get(&self, key: &str) -> Option<Value> {
        let Value::Dict(d) = self else { return None };
        d.borrow().iter().find(|(k, _)| k.as_text().as_deref() == Some(key)).map(|(_, v)| v.clone())
    }

    /// Bytes or text, as text (bytes decoded as UTF-8, lossily).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn as_items(&self) -> Option<Vec<Value>> {
        match self {
            Value::List(l) => Some(l.borrow().clone()),
            Value::Tuple(t) => Some(t.to_vec()),
            _ => None,
        }
    }

    /// A list of integers, or an integer numpy array, as `i64`s.
    pub fn as_int_vec(&self) -> Option<Vec<i64>> {
        if let Ok(a) = self.as_ndarray() {
            return a.to_i64();
        }
        self.as_items()?.iter().map(Value::as_int).collect()
    }

    /// A numpy array, rebuilt from `_reconstruct` + `BUILD` state (every protocol below 5) or `_frombuffer`
    /// (protocol 5 with in-band buffers).
    pub fn as_ndarray(&self) -> Result<NdArray, String> {
        let Value::Object(o) = self else {
            return Err(format!("expected a numpy array, found a {}", self.kind()));
        };
        let o = o.borrow();
        let (module, name) = match &o.callable {
            Value::Global(g) => (g.0.as_str(), g.1.as_str()),
            _ => ("", ""),
        };
        let numpy_core = matches!(module, "numpy.core.multiarray" | "numpy._core.multiarray");
        let numpy_numeric = matches!(module, "numpy.core.numeric" | "numpy._core.numeric");
        if numpy_core && name == "_reconstruct" {
            let state = o.state.as_ref().ok_or("numpy array without state")?;
            let items = state.as_items().ok_or("numpy array state is not a tuple")?;
            // numpy writes (version, shape, dtype, is_fortran, data); older files omit the version.
            let rest = match items.len() {
                5 => &items[1..],
                4 => &items[..],
                n => return Err(format!("numpy array state has {n} items, expected 4 or 5")),
            };
            let shape = shape_of(&rest[0])?;
            let dtype = dtype_of(&rest[1])?;
            let fortran_order = match &rest[2] {
                Value::Bool(b) => *b,
                Value::Int(i) => *i != 0,
                other => return Err(format!("numpy fortran flag is a {}", other.kind())),
            };
            let data = match &rest[3] {
                Value::Bytes(b) => b.clone(),
                Value::Str(s) => Rc::new(latin1(s)?),
                other => {
                    return Err(format!("numpy array data is a {} (object arrays are not supported)", other.kind()));
                }
            };
            return NdArray { dtype, shape, fortran_order, data }.checked();
        }
        if numpy_numeric && name == "_frombuffer" {
            let args = o.args.as_items().ok_or("_frombuffer arguments are not a tuple")?;
            let [buf, dtype, shape, order] = args.as_slice() else {
                return Err(format!("_frombuffer has {} arguments, expected 4", args.len()));
            };
            let Value::Bytes(data) = buf else {
                return Err("_frombuffer buffer is not bytes".into());
            };
            let fortran_order = order.as_text().is_some_and(|o| o == "F");
            return NdArray { dtype: dtype_of(dtype)?, shape: shape_of(shape)?, fortran_order, data: data.clone() }
                .checked();
        }
        Err(format!("expected a numpy array, found an object built by {module}.{name}"))
    }
}

fn shape_of(v: &Value) -> Result<Vec<usize>, String> {
    v.as_items()
        .ok_or("numpy shape is not a tuple")?
        .iter()
        .map(|d| d.as_int().and_then(|i| usize::try_from(i).ok()).ok_or_else(|| "bad numpy dimension".to_string()))
        .collect()
}

/// numpy's `dtype(str, align, copy)` object, with the byte order from its BUILD state (`(3, '<', ...)`).
fn dtype_of(v: &Value) -> Result<String, String> {
    let Value::Object(o) = v else {
        return Err("numpy dtype is not an object".into());
    };
    let o = o.borrow();
    let base =
        o.args.as_items().and_then(|a| a.first().and_then(Value::as_text)).ok_or("numpy dtype without a type")?;
    let order = o
        .state
        .as_ref()
        .and_then(Value::as_items)
        .and_then(|s| s.get(1).and_then(Value::as_text))
        .unwrap_or_else(|| "|".into());
    Ok(format!("{order}{base}"))
}

impl NdArray {
    fn itemsize(&self) -> Option<usize> {
        self.dtype.get(2..)?.parse().ok()
    }

    fn checked(self) -> Result<Self, String> {
        let item = self.itemsize().ok_or_else(|| format!("unsupported numpy dtype {:?}", self.dtype))?;
        let n = self
            .shape
            .iter()
            .try_fold(item, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("numpy shape {:?} overflows", self.shape))?;
        if n != self.data.len() {
            return Err(format!(
                "numpy array of shape {:?} and dtype {} needs {n} bytes, the pickle holds {}",
                self.shape,
                self.dtype,
                self.data.len()
            ));
        }
        Ok(self)
    }

    /// Integer arrays (any width, either byte order), row-major values; `None` for other dtypes or Fortran order
    /// beyond one dimension.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        if self.fortran_order && self.shape.len() > 1 {
            return None;
        }
        let kind = self.dtype.as_bytes().get(1).copied()?;
        let big = self.dtype.starts_with('>');
        let size = self.itemsize()?;
        if !matches!(kind, b'i' | b'u') || !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        Some(
            self.data
                .chunks_exact(size)
                .map(|c| {
                    let mut b = [0u8; 8];
                    if big {
                        c.iter().rev().enumerate().for_each(|(i, &x)| b[i] = x);
                    } else {
                        b[..size].copy_from_slice(c);
                    }
                    if kind == b'i' && b[size - 1] & 0x80 != 0 {
                        b[size..].fill(0xff);
                    }
                    i64::from_le_bytes(b)
                })
                .collect(),
        )
    }
}

/// Test helper: a pickle of a CIFAR-style dict exactly as Python 2's cPickle (protocol 2) writes it, which is how
/// the real CIFAR python files were made: `{'data': uint8 array n×cols, <label_key>: [ints], 'batch_label': str}`.
#[cfg(test)]
pub(crate) fn py2_cifar_pickle(data: &[u8], rows: usize, label_key: &str, labels: &[u8]) -> Vec<u8> {
    fn short_str(out: &mut Vec<u8>, s: &[u8]) {
        out.push(b'U');
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
    fn int(out: &mut Vec<u8>, v: usize) {
        if v < 256 {
            out.extend_from_slice(&[b'K', v as u8]);
        } else if v < 65536 {
            out.push(b'M');
            out.extend_from_slice(&(v as u16).to_le_bytes());
        } else {
            out.push(b'J');
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
    }
    let cols = data.len() / rows.max(1);
    let mut o = b"\x80\x02}q\x01(".to_vec();
    short_str(&mut o, b"data");
    o.extend_from_slice(b"q\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85");
    short_str(&mut o, b"b");
    o.extend_from_slice(b"\x87Rq\x05(K\x01");
    int(&mut o, rows);
    int(&mut o, cols);
    o.extend_from_slice(b"\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89");
    o.push(b'T');
    o.extend_from_slice(&(data.len() as i32).to_le_bytes());
    o.extend_from_slice(data);
    o.extend_from_slice(b"q\x08tb");
    short_str(&mut o, label_key.as_bytes());
    o.extend_from_slice(b"]q\t");
    // cPickle batches list items in groups of 1000, each group inside MARK ... APPENDS.
    for chunk in labels.chunks(1000) {
        o.push(b'(');
        for &l in chunk {
            int(&mut o, l as usize);
        }
        o.push(b'e');
    }
    short_str(&mut o, b"batch_label");
    o.extend_from_slice(b"q\nU\x15training batch 1 of 5q\x0bu.");
    o
}

/// Test helper: Python 2's pickle of a meta dict `{key: [names...]}`.
#[cfg(test)]
pub(crate) fn py2_names_pickle(key: &str, names: &[&str]) -> Vec<u8> {
    let mut o = b"\x80\x02}q\x01(U".to_vec();
    o.push(key.len() as u8);
    o.extend_from_slice(key.as_bytes());
    o.extend_from_slice(b"q\x02]q\x03(");
    for n in names {
        o.push(b'U');
        o.push(n.len() as u8);
        o.extend_from_slice(n.as_bytes());
    }
    o.extend_from_slice(b"eU\x0cnum_vis_dumyK\x01u.");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps({b'batch_label': b'training batch 1 of 5', b'labels': [6, 9, 300],
    /// b'data': np.array([[0,1,2,3],[250,251,252,128]], dtype=np.uint8), b'filenames': [b'a.png', b'b.png']},
    /// protocol=2)` under Python 3.11 / numpy 2.4: bytes as `_codecs.encode`, the module as `numpy._core`.
    const PY3_NUMPY2_PROTOCOL2: &[u8] = b"\x80\x02}q\x00(c_codecs\nencode\nq\x01X\x0b\x00\x00\x00batch_labelq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05h\x01X\x15\x00\x00\x00training batch 1 of 5q\x06h\x03\x86q\x07Rq\x08h\x01X\x06\x00\x00\x00labelsq\th\x03\x86q\nRq\x0b]q\x0c(K\x06K\tM,\x01eh\x01X\x04\x00\x00\x00dataq\rh\x03\x86q\x0eRq\x0fcnumpy._core.multiarray\n_reconstruct\nq\x10cnumpy\nndarray\nq\x11K\x00\x85q\x12h\x01X\x01\x00\x00\x00bq\x13h\x03\x86q\x14Rq\x15\x87q\x16Rq\x17(K\x01K\x02K\x04\x86q\x18cnumpy\ndtype\nq\x19X\x02\x00\x00\x00u1q\x1a\x89\x88\x87q\x1bRq\x1c(K\x03X\x01\x00\x00\x00|q\x1dNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x1eb\x89h\x01X\x0c\x00\x00\x00\x00\x01\x02\x03\xc3\xba\xc3\xbb\xc3\xbc\xc2\x80q\x1fh\x03\x86q Rq!tq\"bh\x01X\t\x00\x00\x00filenamesq#h\x03\x86q$Rq%]q&(h\x01X\x05\x00\x00\x00a.pngq'h\x03\x86q(Rq)h\x01X\x05\x00\x00\x00b.pngq*h\x03\x86q+Rq,eu.";

    #[test]
    fn reads_a_python3_numpy2_protocol2_pickle() {
        let v = parse(PY3_NUMPY2_PROTOCOL2).unwrap();
        assert_eq!(v.get("batch_label").unwrap().as_text().unwrap(), "training batch 1 of 5");
        assert_eq!(v.get("labels").unwrap().as_int_vec().unwrap(), vec![6, 9, 300]);
        let a = v.get("data").unwrap().as_ndarray().unwrap();
        assert_eq!(a.dtype, "|u1");
        assert_eq!(a.shape, vec![2, 4]);
        assert!(!a.fortran_order);
        assert_eq!(a.data.as_slice(), &[0, 1, 2, 3, 250, 251, 252, 128]);
        let names: Vec<String> =
            v.get("filenames").unwrap().as_items().unwrap().iter().map(|n| n.as_text().unwrap()).collect();
        assert_eq!(names, ["a.png", "b.png"]);
    }

    #[test]
    fn reads_a_python2_cpickle_cifar_dict() {
        let data: Vec<u8> = (0..2 * 3072).map(|i| (i % 251) as u8).collect();
        let labels: Vec<u8> = (0..2).collect();
        let v = parse(&py2_cifar_pickle(&data, 2, "labels", &labels)).unwrap();
        let a = v.get("data").unwrap().as_ndarray().unwrap();
        assert_eq!(a.shape, vec![2, 3072]);
        assert_eq!(*a.data, data);
        assert_eq!(v.get("labels").unwrap().as_int_vec().unwrap(), vec![0, 1]);
        assert_eq!(v.get("batch_label").unwrap().as_text().unwrap(), "training batch 1 of 5");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for cut in 0..PY3_NUMPY2_PROTOCOL2.len() {
            assert!(parse(&PY3_NUMPY2_PROTOCOL2[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        // Flip every byte in turn: the result may parse or not, but must not panic.
        let mut b = PY3_NUMPY2_PROTOCOL2.to_vec();
        for i in 0..b.len() {
            let orig = b[i];
            for x in [0x00, 0xff, b'(', b'e', b'R', b'h', b'T'] {
                b[i] = x;
                let _ = parse(&b).and_then(|v| v.get("data").map_or(Ok(()), |d| d.as_ndarray().map(|_| ())));
            }
            b[i] = orig;
        }
    }

    #[test]
    fn integer_arrays_of_every_width() {
        let arr = |dtype: &str, data: Vec<u8>, n: usize| NdArray {
            dtype: dtype.into(),
            shape: vec![n],
            fortran_order: false,
            data: Rc::new(data),
        };
        assert_eq!(arr("<i8", (-3i64).to_le_bytes().to_vec(), 1).to_i64(), Some(vec![-3]));
        assert_eq!(arr(">i4", (-70000i32).to_be_bytes().to_vec(), 1).to_i64(), Some(vec![-70000]));
        assert_eq!(arr("<u2", vec![0xff, 0xff], 1).to_i64(), Some(vec![65535]));
        assert_eq!(arr("|i1", vec![0xfe, 3], 2).to_i64(), Some(vec![-2, 3]));
        assert_eq!(arr("<f4", vec![0; 4], 1).to_i64(), None);
    }

    #[test]
    fn protocol0_text_opcodes() {
        // pickle.dumps({'a': [1, 'x']}, protocol=0) in Python 2.
        let p = b"(dp0\nS'a'\np1\n(lp2\nI1\naS'x'\np3\naL5L\nas.";
        // the list gains 1, 'x' and then 5
        let v = parse(p).unwrap();
        let items = v.get("a").unwrap().as_items().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_int(), Some(1));
        assert_eq!(items[1].as_text().unwrap(), "x");
        assert_eq!(items[2].as_int(), Some(5));
    }
}
