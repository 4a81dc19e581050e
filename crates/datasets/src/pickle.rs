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
//! Bounded whatever the stream holds (see `docs/reliability.md`):
//! - values nest at most [`MAX_DEPTH`] deep, and are freed without recursion, so no stream
//!   can overflow the stack while building or dropping them;
//! - the stack holds at most [`MAX_STACK`] values; the memo and every container are charged
//!   their real heap bytes (the `Rc`'d struct and each `Vec`'s capacity) against
//!   [`Limits::max_container_bytes`] (at most [`MAX_CONTAINER_BYTES`]); lists of ints are
//!   kept as `i64`s;
//! - the integers stored, and those materialised (memo references can repeat one list),
//!   are each capped at [`Limits::max_values`]: at most [`MAX_VALUES`] and the stream's
//!   length in bytes (a pickled integer costs at least one byte); the `.npz` reader
//!   lowers it further by the member's compressed size, so deflate cannot amplify it;
//! - every list and array built is emptied before the call returns, so reference cycles
//!   (a list holding itself) never outlive it.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// Most integers one object array may hold or expand to, and the `.npz` reader's cap per
/// archive (the real `imdb.npz` holds 11.7 million in two arrays, about 6 million each).
pub const MAX_VALUES: usize = 1 << 24;

/// Deepest nesting of containers (an `imdb.npz` array needs 6: array, state, list,
/// element array, its state, its data).
pub const MAX_DEPTH: usize = 64;

/// Most values on the pickle stack at once (pickle appends in batches of 1,000).
pub const MAX_STACK: usize = 1 << 16;

/// Most heap bytes of containers and the memo over one stream, integers in lists aside
/// (measured: 173 bytes per review for lists of ints, the real file's form, so 4 MiB for
/// 25,000; 25,000 integer-array elements in numpy's protocol-3 form need 16 to 20 MiB).
pub const MAX_CONTAINER_BYTES: usize = 32 << 20;

/// Most container bytes per byte of stream (with at least 1 MiB). Measured: 0.31 for the
/// bundled `imdb-5k.npz` (lists of ints), 10 for the Keras-written fixture whose 40 short
/// reviews are integer arrays (memo entries and state tuples, about 1 KB per element).
pub const CONTAINER_BYTES_PER_STREAM_BYTE: usize = 32;

/// What one stream may build: integers, and heap bytes of containers and the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most integers stored in lists, and most materialised into the result.
    pub max_values: usize,
    /// Most heap bytes of containers and the memo, integers in lists aside.
    pub max_container_bytes: usize,
}

impl Limits {
    /// The default caps for a stream of `len` bytes: [`MAX_VALUES`] and at most one
    /// integer per byte; [`MAX_CONTAINER_BYTES`].
    pub fn for_stream(len: usize) -> Self {
        let container_bytes = len.saturating_mul(CONTAINER_BYTES_PER_STREAM_BYTE).max(1 << 20);
        Self { max_values: MAX_VALUES.min(len), max_container_bytes: MAX_CONTAINER_BYTES.min(container_bytes) }
    }
}

/// Heap bytes of an `Rc<T>`'s allocation (two counts, then the value).
const fn rc_bytes<T>() -> usize {
    2 * std::mem::size_of::<usize>() + std::mem::size_of::<T>()
}

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

/// A tuple: immutable, so its depth is known when it is built.
struct Tuple {
    items: Vec<Value>,
    depth: usize,
}

/// A list: its items, and how deep it nests (it grows as items are appended).
struct List {
    items: RefCell<Items>,
    depth: Cell<usize>,
}

/// A list's items: plain integers while it holds only those (8 bytes each, not 32),
/// values once anything else is appended.
enum Items {
    Ints(Vec<i64>),
    Values(Vec<Value>),
}

/// A numpy array under construction: `_reconstruct` makes it, `BUILD` gives it its state.
struct Array {
    state: RefCell<Option<Value>>,
    depth: Cell<usize>,
}

/// A numpy dtype: its type string (`O8`, `i4`, …) and, after `BUILD`, its byte order.
#[derive(Debug)]
struct Dtype {
    code: String,
    byte_order: char,
}

/// A value on the pickle stack.
#[derive(Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float,
    /// Shared, so the memo and `DUP` repeat it without copying.
    Text(Rc<str>),
    Bytes(Rc<Vec<u8>>),
    Tuple(Rc<Tuple>),
    List(Rc<List>),
    Global(Global),
    Array(Rc<Array>),
    Dtype(Rc<RefCell<Dtype>>),
    Mark,
}

// Containers are freed without recursion: the default drop of a value nested 10⁶ deep
// would recurse 10⁶ times and overflow the stack, whatever the depth limit at build time
// (a list's depth can grow after it was put into another container).
impl Drop for Tuple {
    fn drop(&mut self) {
        release(std::mem::take(&mut self.items));
    }
}

impl Drop for List {
    fn drop(&mut self) {
        if let Items::Values(values) = self.items.get_mut() {
            release(std::mem::take(values));
        }
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        if let Some(state) = self.state.get_mut().take() {
            release(vec![state]);
        }
    }
}

/// Drops `work` iteratively: a container losing its last reference is emptied onto the
/// work list before it is dropped, so each drop recurses at most one level.
fn release(mut work: Vec<Value>) {
    while let Some(v) = work.pop() {
        match v {
            Value::Tuple(t) => {
                if let Some(mut t) = Rc::into_inner(t) {
                    work.append(&mut t.items);
                }
            }
            Value::List(l) => {
                if let Some(mut l) = Rc::into_inner(l)
                    && let Items::Values(values) = l.items.get_mut()
                {
                    work.append(values);
                }
            }
            Value::Array(a) => {
                if let Some(mut a) = Rc::into_inner(a) {
                    work.extend(a.state.get_mut().take());
                }
            }
            _ => {}
        }
    }
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

    /// How deep containers nest in this value (0 for a scalar, 1 for a flat container).
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(t) => t.depth,
            Value::List(l) => l.depth.get(),
            Value::Array(a) => a.depth.get(),
            _ => 0,
        }
    }

    /// The text of a `str` (py3) or a py2 byte string (`SHORT_BINSTRING`, read as ASCII by
    /// Keras' unpickler).
    fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
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
    read_sequences_within(stream, Limits::for_stream(stream.len()))
}

/// [`read_sequences`] within `limits` (lowered to the defaults of [`Limits::for_stream`]
/// where those are smaller).
pub fn read_sequences_within(stream: &[u8], limits: Limits) -> Result<Vec<Vec<i64>>, PickleError> {
    let default = Limits::for_stream(stream.len());
    let limits = Limits {
        max_values: limits.max_values.min(default.max_values),
        max_container_bytes: limits.max_container_bytes.min(default.max_container_bytes),
    };
    let mut machine = Machine::new(stream, limits);
    let outcome = machine.run().and_then(|top| {
        // Without the memo and the stack, each element list has one owner and is moved
        // into the result rather than copied.
        machine.release_stack_and_memo();
        sequences_of(&top, stream.len(), limits.max_values)
    });
    machine.finish();
    outcome
}

/// The integer sequences of the object array `top`.
fn sequences_of(top: &Value, stream_len: usize, max_values: usize) -> Result<Vec<Vec<i64>>, PickleError> {
    // Memo references can repeat one list many times: what is materialised is bounded
    // like what is stored.
    let mut budget = Budget { left: max_values, cap: max_values };
    let at_end = |problem: String| PickleError { offset: stream_len, problem };
    let (dtype, data) = array_parts(top).map_err(at_end)?;
    if !dtype.starts_with('O') {
        return Err(at_end(format!("the array's dtype is `{dtype}`, not an object array (`O`)")));
    }
    let Value::List(items) = data else {
        return Err(at_end(format!("an object array's data must be a list, found {}", data.kind())));
    };
    let items = items.items.try_borrow().map_err(|_| at_end("an object array's list holds itself".into()))?;
    match &*items {
        Items::Ints(ints) if ints.is_empty() => Ok(Vec::new()),
        Items::Ints(_) => Err(at_end("element 0: an element is an int, not a list of ints or an integer array".into())),
        Items::Values(values) => values
            .iter()
            .enumerate()
            .map(|(i, v)| sequence(v, &mut budget).map_err(|p| at_end(format!("element {i}: {p}"))))
            .collect(),
    }
}

/// Integers left to materialise.
struct Budget {
    left: usize,
    cap: usize,
}

impl Budget {
    fn charge(&mut self, n: usize) -> Result<(), String> {
        self.left = self.left.checked_sub(n).ok_or(format!(
            "the array expands to more than {} integers (at most {MAX_VALUES}, no more than the stream's \
             bytes, and no more than its compressed size allows; the file may be corrupted or malicious)",
            self.cap
        ))?;
        Ok(())
    }
}

/// `(dtype code, data)` of a built array: the state is `(version, shape, dtype, fortran,
/// data)` or, from older numpy, `(shape, dtype, fortran, data)`.
fn array_parts(v: &Value) -> Result<(String, Value), String> {
    let Value::Array(a) = v else { return Err(format!("the pickle holds {}, not a numpy array", v.kind())) };
    let state = a.state.try_borrow().map_err(|_| "a numpy array that holds itself".to_string())?;
    let Some(Value::Tuple(state)) = &*state else {
        return Err("a numpy array without its state (no BUILD)".into());
    };
    let (shape, dtype, data) = match state.items.as_slice() {
        [_, shape, dtype, _, data] | [shape, dtype, _, data] => (shape, dtype, data),
        other => return Err(format!("a numpy array state of {} items, not 4 or 5", other.len())),
    };
    let Value::Dtype(d) = dtype else { return Err(format!("the array's dtype is {}", dtype.kind())) };
    let Value::Tuple(dims) = shape else { return Err(format!("the array's shape is {}", shape.kind())) };
    if dims.items.len() != 1 {
        return Err(format!("a {}-D array; only 1-D arrays are read", dims.items.len()));
    }
    let d = d.borrow();
    let code = if d.byte_order == '>' { format!(">{}", d.code) } else { d.code.clone() };
    Ok((code, data.clone()))
}

/// One element as integers: a list of ints, or an integer numpy array.
fn sequence(v: &Value, budget: &mut Budget) -> Result<Vec<i64>, String> {
    match v {
        Value::List(list) => {
            let mut items =
                list.items.try_borrow_mut().map_err(|_| "an element is the array's own list".to_string())?;
            match &mut *items {
                Items::Ints(ints) => {
                    budget.charge(ints.len())?;
                    // One owner (the array's list): move the integers out instead of copying.
                    Ok(if Rc::strong_count(list) == 1 { std::mem::take(ints) } else { ints.clone() })
                }
                Items::Values(values) => {
                    let other = values.iter().find(|x| !matches!(x, Value::Int(_) | Value::Bool(_)));
                    Err(format!("a sequence item is {}, not an int", other.map_or("a mark", Value::kind)))
                }
            }
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
            budget.charge(bytes.len() / width)?;
            let signed = code.starts_with('i');
            Ok(bytes.chunks_exact(width).map(|c| int_from(c, big, signed)).collect())
        }
        other => Err(format!("an element is {}, not a list of ints or an integer array", other.kind())),
    }
}

/// An integer from 1–8 bytes.
pub(crate) fn int_from(c: &[u8], big: bool, signed: bool) -> i64 {
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
    /// The caps this stream is read within.
    limits: Limits,
    /// Heap bytes that containers and the memo may still take.
    bytes_left: usize,
    /// Integers that may still be stored in lists.
    ints_left: usize,
    /// Every list and array built, to empty them at the end (cycles among them would
    /// otherwise leak); dead entries are pruned as it grows.
    lists: Vec<Weak<List>>,
    arrays: Vec<Weak<Array>>,
    /// Registry length after the last pruning.
    pruned_at: usize,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], limits: Limits) -> Self {
        Self {
            limits,
            data,
            pos: 0,
            at: 0,
            stack: Vec::new(),
            memo: Default::default(),
            bytes_left: limits.max_container_bytes,
            ints_left: limits.max_values,
            lists: Vec::new(),
            arrays: Vec::new(),
            pruned_at: 0,
        }
    }

    fn err<T>(&self, problem: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { offset: self.at, problem: problem.into() })
    }

    /// Counts `n` more heap bytes of containers or the memo.
    fn charge_bytes(&mut self, n: usize) -> Result<(), PickleError> {
        match self.bytes_left.checked_sub(n) {
            Some(left) => {
                self.bytes_left = left;
                Ok(())
            }
            None => self.err(format!(
                "containers and the memo would take more than {} MiB (the file may be corrupted or malicious)",
                self.limits.max_container_bytes >> 20
            )),
        }
    }

    /// Counts the growth of a `Vec` of `T` from `before` to `after` capacity.
    fn charge_growth<T>(&mut self, before: usize, after: usize) -> Result<(), PickleError> {
        self.charge_bytes(after.saturating_sub(before) * std::mem::size_of::<T>())
    }

    /// Counts one more integer stored in a list.
    fn charge_int(&mut self) -> Result<(), PickleError> {
        match self.ints_left.checked_sub(1) {
            Some(left) => {
                self.ints_left = left;
                Ok(())
            }
            None => self.err(format!(
                "more than {} integers in lists (the file may be corrupted or malicious)",
                self.limits.max_values
            )),
        }
    }

    /// `depth`, or an error when it is beyond [`MAX_DEPTH`].
    fn nest(&self, depth: usize) -> Result<usize, PickleError> {
        if depth > MAX_DEPTH {
            return self.err(format!(
                "values nested more than {MAX_DEPTH} deep (a Keras dataset needs 6; the file may be corrupted or \
                 malicious)"
            ));
        }
        Ok(depth)
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

    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return self.err(format!(
                "more than {MAX_STACK} values on the pickle stack (the file may be corrupted or malicious)"
            ));
        }
        self.stack.push(v);
        Ok(())
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

    /// The list on top of the stack (for `APPEND`, `APPENDS`).
    fn top_list(&mut self, op: &str) -> Result<Rc<List>, PickleError> {
        match self.top()? {
            Value::List(l) => Ok(l.clone()),
            other => {
                let kind = other.kind();
                self.err(format!("{op} to {kind}, not a list"))
            }
        }
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
            Ok(s) => Ok(Value::Text(Rc::from(s))),
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

    /// A tuple of `items`, within the depth and item limits.
    fn tuple(&mut self, items: Vec<Value>) -> Result<Value, PickleError> {
        if items.iter().any(|v| matches!(v, Value::Mark)) {
            return self.err("a mark inside a tuple");
        }
        let depth = self.nest(1 + items.iter().map(Value::depth).max().unwrap_or(0))?;
        self.charge_bytes(rc_bytes::<Tuple>() + items.capacity() * std::mem::size_of::<Value>())?;
        Ok(Value::Tuple(Rc::new(Tuple { items, depth })))
    }

    /// A new list of `items`, registered so that it is emptied at the end.
    fn list(&mut self, items: Vec<Value>) -> Result<Value, PickleError> {
        // The struct, and its entry in the registry (which may be twice as long as it holds).
        self.charge_bytes(rc_bytes::<List>() + 2 * std::mem::size_of::<Weak<List>>())?;
        let list = Rc::new(List { items: RefCell::new(Items::Ints(Vec::new())), depth: Cell::new(1) });
        self.lists.push(Rc::downgrade(&list));
        self.prune();
        self.extend(&list, items)?;
        Ok(Value::List(list))
    }

    /// A new, empty numpy array, registered so that it is emptied at the end.
    fn array(&mut self) -> Result<Value, PickleError> {
        self.charge_bytes(rc_bytes::<Array>() + 2 * std::mem::size_of::<Weak<Array>>())?;
        let array = Rc::new(Array { state: RefCell::new(None), depth: Cell::new(1) });
        self.arrays.push(Rc::downgrade(&array));
        self.prune();
        Ok(Value::Array(array))
    }

    /// Forgets lists and arrays already freed once the registry has doubled.
    fn prune(&mut self) {
        if self.lists.len() + self.arrays.len() >= (2 * self.pruned_at).max(1024) {
            self.lists.retain(|w| w.strong_count() > 0);
            self.arrays.retain(|w| w.strong_count() > 0);
            self.pruned_at = self.lists.len() + self.arrays.len();
        }
    }

    /// Appends `items` to `list`, keeping integers as integers while it holds only those.
    fn extend(&mut self, list: &List, items: Vec<Value>) -> Result<(), PickleError> {
        if items.iter().any(|v| matches!(v, Value::Mark)) {
            return self.err("a mark inside a list");
        }
        let deepest = items.iter().map(Value::depth).max().unwrap_or(0);
        list.depth.set(self.nest(list.depth.get().max(deepest + 1))?);
        let mut held = list.items.borrow_mut();
        for v in items {
            let int = match v {
                Value::Int(i) => Some(i),
                Value::Bool(b) => Some(i64::from(b)),
                _ => None,
            };
            match (&mut *held, int) {
                (Items::Ints(ints), Some(i)) => {
                    self.charge_int()?;
                    ints.push(i);
                }
                (Items::Ints(ints), None) => {
                    let mut values: Vec<Value> = Vec::new();
                    self.charge_growth::<Value>(0, ints.len() + 1)?;
                    values.reserve_exact(ints.len() + 1);
                    values.extend(std::mem::take(ints).into_iter().map(Value::Int));
                    values.push(v);
                    *held = Items::Values(values);
                }
                (Items::Values(values), _) => {
                    let before = values.capacity();
                    if values.len() == before {
                        // What `push` will grow the capacity to (it doubles, from at least 4).
                        self.charge_growth::<Value>(before, (2 * before).max(4))?;
                    }
                    values.push(v);
                }
            }
        }
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        if matches!(v, Value::Mark) {
            return self.err("memoizing a mark");
        }
        let before = self.memo.capacity();
        if self.memo.len() == before && !self.memo.contains_key(&key) {
            // A hash table doubling: each slot costs its entry and a control byte, and a
            // table holds up to 8/7 of its capacity in slots.
            let after = (2 * before).max(4);
            self.charge_bytes((after - before) * (std::mem::size_of::<(u32, Value)>() + 1) * 8 / 7)?;
        }
        // What a slot held before is dropped here, iteratively however deep it is.
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(v) => {
                let v = v.clone();
                self.push(v)
            }
            None => self.err(format!("memo key {key} was never stored")),
        }
    }

    /// `callable(*args)` for the allowed globals, interpreted, not called.
    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Tuple(args) = args else { return self.err(format!("REDUCE arguments are {}", args.kind())) };
        match callable {
            Value::Global(Global::Reconstruct) => match args.items.first() {
                Some(Value::Global(Global::NdArray)) => self.array(),
                _ => self.err("_reconstruct is only allowed to rebuild a numpy.ndarray"),
            },
            Value::Global(Global::Dtype) => {
                let Some(code) = args.items.first().and_then(Value::as_text) else {
                    return self.err("numpy.dtype needs a type string");
                };
                // numpy's type strings are a few bytes (`O8`, `i4`); each dtype keeps a copy.
                if code.len() > 16 {
                    return self.err(format!("a numpy dtype named by a {}-byte string", code.len()));
                }
                let code = code.to_string();
                self.charge_bytes(rc_bytes::<RefCell<Dtype>>() + code.len())?;
                Ok(Value::Dtype(Rc::new(RefCell::new(Dtype { code, byte_order: '|' }))))
            }
            Value::Global(Global::NdArray) => self.err("calling numpy.ndarray directly is not supported"),
            other => self.err(format!("REDUCE of {}, not an allowed global", other.kind())),
        }
    }

    fn build(&mut self, state: Value) -> Result<(), PickleError> {
        match self.top()?.clone() {
            Value::Array(a) => {
                a.depth.set(self.nest(a.depth.get().max(state.depth() + 1))?);
                // A state set before is dropped after the borrow ends.
                let _old = a.state.replace(Some(state));
                Ok(())
            }
            Value::Dtype(d) => {
                // (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
                if let Value::Tuple(t) = &state
                    && let Some(order) = t.items.get(1).and_then(Value::as_text)
                {
                    d.borrow_mut().byte_order = order.chars().next().unwrap_or('|');
                }
                Ok(())
            }
            other => self.err(format!("BUILD on {}", other.kind())),
        }
    }

    /// Drops the stack and the memo (the result, already popped, stays).
    fn release_stack_and_memo(&mut self) {
        drop(std::mem::take(&mut self.stack));
        drop(std::mem::take(&mut self.memo));
    }

    /// Empties every list and array built, so reference cycles among them (a list
    /// holding itself through the memo) are broken and everything is freed.
    fn finish(&mut self) {
        self.release_stack_and_memo();
        for list in std::mem::take(&mut self.lists) {
            if let Some(list) = list.upgrade() {
                let items = list.items.replace(Items::Ints(Vec::new()));
                drop(items);
            }
        }
        for array in std::mem::take(&mut self.arrays) {
            if let Some(array) = array.upgrade() {
                let state = array.state.replace(None);
                drop(state);
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
                b'(' => self.push(Value::Mark)?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { usize::from(self.u8()?) } else { self.u32()? as usize };
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return self.err(format!("an integer of {n} bytes does not fit in 64 bits"));
                    }
                    let v = if n == 0 { 0 } else { int_from(bytes, false, true) };
                    self.push(Value::Int(v))?;
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
                    self.push(v)?;
                }
                b'G' => {
                    self.take(8)?; // a float: never part of an integer sequence
                    self.push(Value::Float)?;
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                0x8d => {
                    let n = self.len64()?;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                b'U' | b'C' => {
                    let n = usize::from(self.u8()?);
                    let v = self.bytes(n)?;
                    self.push(v)?;
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let v = self.bytes(n)?;
                    self.push(v)?;
                }
                0x8e | 0x96 => {
                    let n = self.len64()?;
                    let v = self.bytes(n)?;
                    self.push(v)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(module, name)?;
                    self.push(g)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Text(module), Value::Text(name)) = (module, name) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    let g = self.global(&module, &name)?;
                    self.push(g)?;
                }
                b')' => {
                    let t = self.tuple(Vec::new())?;
                    self.push(t)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let t = self.tuple(items)?;
                    self.push(t)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return self.err("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let t = self.tuple(items)?;
                    self.push(t)?;
                }
                b']' => {
                    let l = self.list(Vec::new())?;
                    self.push(l)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let l = self.list(items)?;
                    self.push(l)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let list = self.top_list("APPEND")?;
                    self.extend(&list, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top_list("APPENDS")?;
                    self.extend(&list, items)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)?;
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
                    self.push(v)?;
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
        let mut m = Machine::new(stream, Limits::for_stream(stream.len()));
        let top = m.run().unwrap_or_else(|e| panic!("{e}"));
        let Value::List(list) = &top else { panic!("{}", top.kind()) };
        let weak = Rc::downgrade(list);
        m.stack.push(top);
        m.finish();
        assert!(weak.upgrade().is_none(), "the self-referencing list outlived the reader");
        let err = read_sequences(stream).unwrap_err().to_string();
        assert!(err.contains("not a numpy array"), "{err}");
    }

    /// The opening of a py2-style protocol-2 object array of `n` elements: the array, then
    /// the state tuple up to its data list (which the caller pushes, then closes with `tb.`).
    fn py2_array_head(globals_module: &str, n: u8) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(format!("c{globals_module}\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00").as_bytes());
        p.extend(b"\x85U\x01b\x87R");
        p.extend(b"(K\x01K");
        p.push(n);
        p.extend(b"\x85cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89");
        p
    }

    /// A py2-style protocol-2 object array of two lists, written opcode by opcode.
    fn py2_array(globals_module: &str) -> Vec<u8> {
        let mut p = py2_array_head(globals_module, 2);
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

    // --- round 3: pickle depth and memory ---

    /// 10⁶ `TUPLE1` then `POP`: a million nested tuples used to overflow the stack when
    /// dropped (issue 23, finding 1). Surviving is the assertion; the error names the limit.
    #[test]
    fn a_million_nested_tuples_are_refused_without_overflowing() {
        let mut p = b"\x80\x02K\x01".to_vec();
        p.extend(std::iter::repeat_n(0x85, 1_000_000));
        p.extend(b"0.");
        let err = read_sequences(&p).unwrap_err();
        assert!(err.problem.contains("nested more than 64 deep"), "{err}");
        assert_eq!(err.offset, 4 + MAX_DEPTH, "{err}"); // the 65th TUPLE1
    }

    /// 10⁶ lists, each holding the previous one, held only by a memo slot that each step
    /// overwrites: the chain used to be freed recursively.
    #[test]
    fn a_million_lists_chained_through_an_overwritten_memo_slot_are_refused() {
        let mut p = b"\x80\x02]q\x00".to_vec();
        for _ in 0..1_000_000 {
            p.extend(b"]h\x00aq\x000");
        }
        p.push(b'.');
        let err = read_sequences(&p).unwrap_err();
        assert!(err.problem.contains("nested more than 64 deep"), "{err}");
    }

    /// Freeing is iterative whatever the depth, even of values the depth limit never saw
    /// (a list can grow deeper after it was put into another container).
    #[test]
    fn values_nested_a_million_deep_are_freed_without_recursion() {
        let mut v = Value::Int(1);
        for i in 0..1_000_000 {
            v = if i % 3 == 0 {
                Value::Tuple(Rc::new(Tuple { items: vec![v], depth: i + 1 }))
            } else if i % 3 == 1 {
                let list = List { items: RefCell::new(Items::Values(vec![v])), depth: Cell::new(i + 1) };
                Value::List(Rc::new(list))
            } else {
                Value::Array(Rc::new(Array { state: RefCell::new(Some(v)), depth: Cell::new(i + 1) }))
            };
        }
        drop(v);
    }

    /// One list of 200 ints referenced 10,000 times from the array's list: 2 million ints
    /// from a 3 KB stream, refused by name (it used to be accepted up to 2²⁸).
    #[test]
    fn memo_references_cannot_expand_past_the_streams_size() {
        let mut p = py2_array_head("numpy.core.multiarray", 255);
        p.extend(b"](]q\x07(");
        for _ in 0..200 {
            p.extend(b"K\x05");
        }
        p.push(b'e');
        for _ in 0..100 {
            p.extend(b"h\x07");
        }
        p.push(b'e');
        let mut outer_refs = Vec::new();
        for _ in 0..99 {
            outer_refs.extend(b"(");
            for _ in 0..100 {
                outer_refs.extend(b"h\x07");
            }
            outer_refs.push(b'e');
        }
        p.extend(&outer_refs);
        p.extend(b"tb.");
        assert!(p.len() < 24_000, "{}", p.len());
        let err = read_sequences(&p).unwrap_err();
        assert!(err.problem.contains("expands to more than") && err.problem.contains("element"), "{err}");
        // The same list referenced a few times is read.
        let mut ok = py2_array_head("numpy.core.multiarray", 3);
        ok.extend(b"](]q\x07(K\x05K\x06eh\x07h\x07etb.");
        assert_eq!(read_sequences(&ok).unwrap(), vec![vec![5, 6]; 3]);
    }

    /// A stream of `N`s: at most `MAX_STACK` values on the stack, not one per byte.
    #[test]
    fn the_stack_and_the_containers_are_bounded() {
        let mut p = b"\x80\x02".to_vec();
        p.extend(std::iter::repeat_n(b'N', MAX_STACK + 10));
        let err = read_sequences(&p).unwrap_err();
        assert!(err.problem.contains("values on the pickle stack"), "{err}");
        // Batches of Nones appended to one list: at most MAX_CONTAINER_BYTES of values stored.
        let mut p = b"\x80\x02]".to_vec();
        for _ in 0..(MAX_CONTAINER_BYTES / std::mem::size_of::<Value>() / 1000 + 2) {
            p.push(b'(');
            p.extend(std::iter::repeat_n(b'N', 1000));
            p.push(b'e');
        }
        let err = read_sequences(&p).unwrap_err();
        assert!(err.problem.contains("containers and the memo would take more than"), "{err}");
        // Integers stored in lists: at most one per stream byte.
        let mut m = Machine::new(b"\x80\x02](K\x01K\x02e.", Limits::for_stream(6));
        m.ints_left = 1;
        let err = m.run().err().unwrap();
        assert!(err.problem.contains("integers in lists"), "{err}");
        m.finish();
    }
}
