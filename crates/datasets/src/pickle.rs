//! A restricted pickle reader for the ragged object arrays of Keras' `imdb.npz`.
//!
//! Keras 3 reads them with `npz_utils.RestrictedUnpickler`, which resolves exactly these
//! globals: `numpy.ndarray`, `numpy.dtype` and `numpy.core.multiarray._reconstruct` (or its
//! numpy ≥ 2 spelling `numpy._core.multiarray._reconstruct`). This reader allows the same
//! four and nothing else, and it *executes* nothing: each allowed global is interpreted by
//! what it means (build an empty array, describe a dtype), never called.
//!
//! It reads protocol 2 as Python 2 wrote the real `imdb.npz` (type codes as byte strings,
//! `numpy.core`), and protocols 3–5 as current numpy writes them (`np.save` uses 4; elements
//! may be lists of ints or small integer arrays). The result is one `Vec<i64>` per element.
//!
//! Bounded: the stack, the memo and every container grow only with opcodes read (each at
//! least one byte of input), and the integers materialised are capped at [`MAX_VALUES`]
//! (memo references could otherwise repeat one list without end).

use std::cell::RefCell;
use std::rc::Rc;

/// Most integers one object array may expand to (the real `imdb.npz` holds 11.7 million).
pub const MAX_VALUES: usize = 1 << 28;

/// The globals Keras' restricted unpickler allows, by `(module, name)`.
const ALLOWED: [(&str, &str, Global); 4] = [
    ("numpy", "ndarray", Global::NdArray),
    ("numpy", "dtype", Global::Dtype),
    ("numpy.core.multiarray", "_reconstruct", Global::Reconstruct),
    ("numpy._core.multiarray", "_reconstruct", Global::Reconstruct),
];

/// One of the allowed globals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    NdArray,
    Dtype,
    Reconstruct,
}

/// A numpy array under construction: `_reconstruct` makes it, `BUILD` gives it its state.
#[derive(Debug, Default)]
struct Array {
    state: Option<Value>,
}

/// A numpy dtype: its type string (`O8`, `i4`, …) and, after `BUILD`, its byte order.
#[derive(Debug)]
struct Dtype {
    code: String,
    byte_order: char,
}

/// A value on the pickle stack.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float,
    Text(String),
    Bytes(Rc<Vec<u8>>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Global(Global),
    Array(Rc<RefCell<Array>>),
    Dtype(Rc<RefCell<Dtype>>),
    Mark,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float => "a float",
            Value::Text(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Global(_) => "a global",
            Value::Array(_) => "a numpy array",
            Value::Dtype(_) => "a numpy dtype",
            Value::Mark => "a mark",
        }
    }

    /// The text of a `str` (py3) or a py2 byte string (`SHORT_BINSTRING`, read as ASCII by
    /// Keras' unpickler).
    fn as_text(&self) -> Option<String> {
        match self {
            Value::Text(t) => Some(t.clone()),
            Value::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_string),
            _ => None,
        }
    }
}

/// Why a pickle stream was refused: the opcode offset and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the opcode that failed.
    pub offset: usize,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pickle stream, byte {}: {}", self.offset, self.problem)
    }
}

/// Reads a pickled 1-D numpy object array whose elements are integer sequences (Python
/// lists of ints, or integer numpy arrays) — the form of `imdb.npz`'s `x_train`/`x_test`.
pub fn read_sequences(stream: &[u8]) -> Result<Vec<Vec<i64>>, PickleError> {
    let mut machine = Machine::new(stream);
    let outcome = machine.run().and_then(|top| {
        let sequences = sequences_of(&top, stream.len());
        machine.stack.push(top);
        sequences
    });
    // A hostile stream can make a list hold itself (memo + APPEND): break every cycle so
    // nothing it built outlives the call.
    machine.break_cycles();
    outcome
}

/// The integer sequences of the object array `top`.
fn sequences_of(top: &Value, stream_len: usize) -> Result<Vec<Vec<i64>>, PickleError> {
    let mut budget = MAX_VALUES;
    let at_end = |problem: String| PickleError { offset: stream_len, problem };
    let (dtype, data) = array_parts(top).map_err(at_end)?;
    if !dtype.starts_with('O') {
        return Err(at_end(format!("the array's dtype is `{dtype}`, not an object array (`O`)")));
    }
    let Value::List(items) = data else {
        return Err(at_end(format!("an object array's data must be a list, found {}", data.kind())));
    };
    let items = items.borrow();
    items
        .iter()
        .enumerate()
        .map(|(i, v)| sequence(v, &mut budget).map_err(|p| at_end(format!("element {i}: {p}"))))
        .collect()
}

/// `(dtype code, data)` of a built array: the state is `(version, shape, dtype, fortran,
/// data)` or, from older numpy, `(shape, dtype, fortran, data)`.
fn array_parts(v: &Value) -> Result<(String, Value), String> {
    let Value::Array(a) = v else { return Err(format!("the pickle holds {}, not a numpy array", v.kind())) };
    let a = a.borrow();
    let Some(Value::Tuple(state)) = &a.state else {
        return Err("a numpy array without its state (no BUILD)".into());
    };
    let (shape, dtype, data) = match state.as_slice() {
        [_, shape, dtype, _, data] | [shape, dtype, _, data] => (shape, dtype, data),
        other => return Err(format!("a numpy array state of {} items, not 4 or 5", other.len())),
    };
    let Value::Dtype(d) = dtype else { return Err(format!("the array's dtype is {}", dtype.kind())) };
    let Value::Tuple(dims) = shape else { return Err(format!("the array's shape is {}", shape.kind())) };
    if dims.len() != 1 {
        return Err(format!("a {}-D array; only 1-D arrays are read", dims.len()));
    }
    let d = d.borrow();
    let code = if d.byte_order == '>' { format!(">{}", d.code) } else { d.code.clone() };
    Ok((code, data.clone()))
}

/// One element as integers: a list of ints, or an integer numpy array.
fn sequence(v: &Value, budget: &mut usize) -> Result<Vec<i64>, String> {
    let mut charge = |n: usize| {
        *budget = budget.checked_sub(n).ok_or(format!("the array holds more than {MAX_VALUES} integers"))?;
        Ok::<(), String>(())
    };
    match v {
        Value::List(items) => {
            let items = items.borrow();
            charge(items.len())?;
            items
                .iter()
                .map(|x| match x {
                    Value::Int(i) => Ok(*i),
                    Value::Bool(b) => Ok(i64::from(*b)),
                    other => Err(format!("a sequence item is {}, not an int", other.kind())),
                })
                .collect()
        }
        Value::Array(_) => {
            let (code, data) = array_parts(v)?;
            let Value::Bytes(bytes) = data else { return Err(format!("an integer array's data is {}", data.kind())) };
            let (big, code) = match code.strip_prefix('>') {
                Some(c) => (true, c.to_string()),
                None => (false, code),
            };
            let width: usize = match code.as_str() {
                "i1" | "u1" | "b1" => 1,
                "i2" | "u2" => 2,
                "i4" | "u4" => 4,
                "i8" | "u8" => 8,
                other => return Err(format!("element dtype `{other}` is not an integer type")),
            };
            if bytes.len() % width != 0 {
                return Err(format!("{} data bytes are not a whole number of `{code}` items", bytes.len()));
            }
            charge(bytes.len() / width)?;
            let signed = code.starts_with('i');
            Ok(bytes.chunks_exact(width).map(|c| int_from(c, big, signed)).collect())
        }
        other => Err(format!("an element is {}, not a list of ints or an integer array", other.kind())),
    }
}

/// An integer from 1–8 bytes.
fn int_from(c: &[u8], big: bool, signed: bool) -> i64 {
    let mut b = [0u8; 8];
    let w = c.len();
    if big {
        b[8 - w..].copy_from_slice(c);
        b.reverse();
    } else {
        b[..w].copy_from_slice(c);
    }
    let negative = signed && b[w - 1] & 0x80 != 0;
    if negative {
        b[w..].fill(0xff);
    }
    i64::from_le_bytes(b)
}

/// The pickle virtual machine, restricted to the opcodes numpy arrays need.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run (for errors).
    at: usize,
    stack: Vec<Value>,
    memo: std::collections::HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0, at: 0, stack: Vec::new(), memo: Default::default() }
    }

    fn err<T>(&self, problem: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { offset: self.at, problem: problem.into() })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        match self.pos.checked_add(n).filter(|&end| end <= self.data.len()) {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.err(format!("truncated: {n} more bytes needed, {} left", self.data.len() - self.pos)),
        }
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn len64(&mut self) -> Result<usize, PickleError> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        usize::try_from(n).or_else(|_| self.err(format!("a length of {n} bytes")))
    }

    /// A text line (protocol 0/1 opcodes, and `GLOBAL`), without its newline.
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else { return self.err("unterminated text line") };
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).or_else(|_| self.err("a text line that is not UTF-8"))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Value::Mark) => self.err("a mark where a value was expected"),
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.at;
        self.stack.last_mut().ok_or(PickleError { offset: at, problem: "stack underflow".into() })
    }

    /// The values above the topmost mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return self.err("no mark on the stack");
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Text(s.to_string())),
            Err(_) => self.err("a unicode string that is not UTF-8"),
        }
    }

    fn bytes(&mut self, n: usize) -> Result<Value, PickleError> {
        Ok(Value::Bytes(Rc::new(self.take(n)?.to_vec())))
    }

    fn global(&self, module: &str, name: &str) -> Result<Value, PickleError> {
        match ALLOWED.iter().find(|(m, n, _)| *m == module && *n == name) {
            Some((_, _, g)) => Ok(Value::Global(*g)),
            None => self.err(format!(
                "refusing to deserialize `{module}.{name}`: a Keras dataset only needs numpy.ndarray, numpy.dtype \
                 and numpy.core.multiarray._reconstruct (the file may be corrupted or malicious)"
            )),
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        if matches!(v, Value::Mark) {
            return self.err("memoizing a mark");
        }
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => self.err(format!("memo key {key} was never stored")),
        }
    }

    /// `callable(*args)` for the allowed globals, interpreted, not called.
    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Tuple(args) = args else { return self.err(format!("REDUCE arguments are {}", args.kind())) };
        match callable {
            Value::Global(Global::Reconstruct) => match args.first() {
                Some(Value::Global(Global::NdArray)) => Ok(Value::Array(Rc::default())),
                _ => self.err("_reconstruct is only allowed to rebuild a numpy.ndarray"),
            },
            Value::Global(Global::Dtype) => {
                let Some(code) = args.first().and_then(Value::as_text) else {
                    return self.err("numpy.dtype needs a type string");
                };
                Ok(Value::Dtype(Rc::new(RefCell::new(Dtype { code, byte_order: '|' }))))
            }
            Value::Global(Global::NdArray) => self.err("calling numpy.ndarray directly is not supported"),
            other => self.err(format!("REDUCE of {}, not an allowed global", other.kind())),
        }
    }

    fn build(&mut self, state: Value) -> Result<(), PickleError> {
        match self.top()?.clone() {
            Value::Array(a) => {
                a.borrow_mut().state = Some(state);
                Ok(())
            }
            Value::Dtype(d) => {
                // (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
                if let Value::Tuple(t) = &state
                    && let Some(order) = t.get(1).and_then(Value::as_text)
                {
                    d.borrow_mut().byte_order = order.chars().next().unwrap_or('|');
                }
                Ok(())
            }
            other => self.err(format!("BUILD on {}", other.kind())),
        }
    }

    /// Empties every list and array reachable from the stack and the memo (tuples are
    /// walked once each), without recursion: reference cycles through them are broken.
    fn break_cycles(&mut self) {
        let mut work: Vec<Value> = std::mem::take(&mut self.stack);
        work.extend(std::mem::take(&mut self.memo).into_values());
        let mut seen_tuples = std::collections::HashSet::new();
        while let Some(v) = work.pop() {
            match v {
                Value::List(l) => work.append(&mut l.borrow_mut()),
                Value::Array(a) => work.extend(a.borrow_mut().state.take()),
                Value::Tuple(t) if seen_tuples.insert(Rc::as_ptr(&t)) => work.extend(t.iter().cloned()),
                _ => {}
            }
        }
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if !(2..=5).contains(&proto) {
                        return self.err(format!("pickle protocol {proto}; protocols 2 to 5 are read"));
                    }
                }
                0x95 => {
                    self.len64()?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.push(Value::Mark),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
                    self.push(Value::Int(i64::from(v)));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.push(Value::Int(i64::from(v)));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { usize::from(self.u8()?) } else { self.u32()? as usize };
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return self.err(format!("an integer of {n} bytes does not fit in 64 bits"));
                    }
                    let v = if n == 0 { 0 } else { int_from(bytes, false, true) };
                    self.push(Value::Int(v));
                }
                b'I' | b'L' => {
                    let line = self.line()?.trim_end_matches('L').to_string();
                    let v = match line.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        t => match t.parse::<i64>() {
                            Ok(i) => Value::Int(i),
                            Err(_) => return self.err(format!("`{t}` is not a 64-bit integer")),
                        },
                    };
                    self.push(v);
                }
                b'G' => {
                    self.take(8)?; // a float: never part of an integer sequence
                    self.push(Value::Float);
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.text(n)?;
                    self.push(v);
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.text(n)?;
                    self.push(v);
                }
                0x8d => {
                    let n = self.len64()?;
                    let v = self.text(n)?;
                    self.push(v);
                }
                b'U' | b'C' => {
                    let n = usize::from(self.u8()?);
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                0x8e | 0x96 => {
                    let n = self.len64()?;
                    let v = self.bytes(n)?;
                    self.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(module, name)?;
                    self.push(g);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Text(module), Value::Text(name)) = (module, name) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    let g = self.global(&module, &name)?;
                    self.push(g);
                }
                b')' => self.push(Value::Tuple(Rc::new(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return self.err("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    if items.iter().any(|v| matches!(v, Value::Mark)) {
                        return self.err("a mark inside a tuple");
                    }
                    self.push(Value::Tuple(Rc::new(items)));
                }
                b']' => self.push(Value::List(Rc::default())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let v = self.pop()?;
                    let Value::List(l) = self.top()? else { return self.err("APPEND to something not a list") };
                    l.borrow_mut().push(v);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let Value::List(l) = self.top()? else { return self.err("APPENDS to something not a list") };
                    l.borrow_mut().extend(items);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    self.build(state)?;
                }
                b'q' => {
                    let k = u32::from(self.u8()?);
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).or_else(|_| self.err("memo overflow"))?;
                    self.memo_put(k)?;
                }
                b'p' => {
                    let k = self.line()?.parse::<u32>().or_else(|_| self.err("PUT with a bad key"))?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = u32::from(self.u8()?);
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'g' => {
                    let k = self.line()?.parse::<u32>().or_else(|_| self.err("GET with a bad key"))?;
                    self.memo_get(k)?;
                }
                b'0' => {
                    self.stack.pop().map_or_else(|| self.err("POP of an empty stack"), |_| Ok(()))?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v);
                }
                other => return self.err(format!("opcode 0x{other:02x} is not allowed in a Keras dataset pickle")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_that_holds_itself_is_freed() {
        // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: [[...]] (found by fuzzing as a leak).
        let stream = b"\x80\x02]q\x00h\x00a.";
        let mut m = Machine::new(stream);
        let top = m.run().unwrap();
        let Value::List(list) = &top else { panic!("{top:?}") };
        let weak = Rc::downgrade(list);
        m.stack.push(top);
        m.break_cycles();
        assert!(weak.upgrade().is_none(), "the self-referencing list outlived the reader");
        let err = read_sequences(stream).unwrap_err().to_string();
        assert!(err.contains("not a numpy array"), "{err}");
    }

    /// A py2-style protocol-2 object array of two lists, written opcode by opcode.
    fn py2_array(globals_module: &str) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(format!("c{globals_module}\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00").as_bytes());
        p.extend(b"\x85U\x01b\x87R");
        p.extend(b"(K\x01K\x02\x85cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89");
        // outer list, mark, [5, 256, -1] by APPENDS, [7] by APPEND, APPENDS into outer.
        p.extend(b"](](K\x05M\x00\x01J\xff\xff\xff\xffe]K\x07ae");
        p.extend(b"tb.");
        p
    }

    #[test]
    fn reads_a_python2_protocol_2_object_array() {
        let got = read_sequences(&py2_array("numpy.core.multiarray")).unwrap();
        assert_eq!(got, vec![vec![5, 256, -1], vec![7]]);
    }

    #[test]
    fn refuses_every_global_but_keras_four() {
        for (m, n) in [("os", "system"), ("builtins", "eval"), ("numpy", "load"), ("numpy.core.multiarray", "scalar")] {
            let mut p = vec![0x80, 2];
            p.extend(format!("c{m}\n{n}\n").as_bytes());
            let err = read_sequences(&p).unwrap_err();
            assert!(err.problem.contains(&format!("refusing to deserialize `{m}.{n}`")), "{err}");
            assert_eq!(err.offset, 2);
        }
    }

    #[test]
    fn truncated_and_foreign_streams_are_errors_not_panics() {
        let full = py2_array("numpy._core.multiarray");
        for cut in 0..full.len() {
            assert!(read_sequences(&full[..cut]).is_err(), "cut at {cut}");
        }
        let err = read_sequences(b"\x80\x02}.").unwrap_err();
        assert!(err.problem.contains("opcode 0x7d"), "{err}");
    }

    #[test]
    fn integers_of_every_width_and_byte_order() {
        assert_eq!(int_from(&[0xff], false, true), -1);
        assert_eq!(int_from(&[0xff], false, false), 255);
        assert_eq!(int_from(&[0x00, 0x01], true, true), 1);
        assert_eq!(int_from(&[0x00, 0x80], false, true), -32768);
        assert_eq!(int_from(&[1, 0, 0, 0, 0, 0, 0, 0], false, true), 1);
    }
}
