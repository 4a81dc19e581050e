//! Memory is bounded by what an input really holds, measured under a counting global
//! allocator: the peak of live heap bytes while a reader runs, minus what was live before.
//! One test runs the cases in turn, so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln::prelude::*;
use kiln_datasets::{MAX_TOTAL_REVIEW_BYTES, Split, read_aclimdb, read_idx};

/// Counts live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
    THREAD.with(|t| t.grew(by));
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
    THREAD.with(|t| t.shrank(by));
}

/// The same count for the current thread only, so a test measuring one reader is not
/// disturbed by the others running beside it (`peak_of_this_thread`).
struct ThreadCount {
    live: std::cell::Cell<isize>,
    peak: std::cell::Cell<isize>,
}

impl ThreadCount {
    fn grew(&self, by: usize) {
        let now = self.live.get() + by as isize;
        self.live.set(now);
        self.peak.set(self.peak.get().max(now));
    }
    fn shrank(&self, by: usize) {
        self.live.set(self.live.get() - by as isize);
    }
}

thread_local! {
    // `const` and without a destructor: safe to touch from inside the allocator.
    static THREAD: ThreadCount = const { ThreadCount { live: std::cell::Cell::new(0), peak: std::cell::Cell::new(0) } };
}

// SAFETY: forwards every call to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            shrank(layout.size() - new_size);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The extra heap `f` needed at its peak, and its result.
fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (PEAK.load(Ordering::Relaxed) - before, out)
}

const MIB: usize = 1 << 20;

/// A fresh scratch folder, made outside any measured closure. A TempDir: removed when the
/// test ends, even on panic; bind it after `serial()` so it is removed before the lock is freed.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("kiln-memory-{name}-")).tempdir().unwrap()
}

/// A gzipped IDX file of `n` 28×28 images, written without holding it whole.
fn idx_images_gz(path: &Path, n: u32) -> usize {
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    gz.write_all(&[0, 0, 8, 3]).unwrap();
    for d in [n, 28, 28] {
        gz.write_all(&d.to_be_bytes()).unwrap();
    }
    let row: Vec<u8> = (0..784).map(|i| (i % 251) as u8).collect();
    for _ in 0..n {
        gz.write_all(&row).unwrap();
    }
    gz.finish().unwrap();
    n as usize * 784
}

/// A tar.gz of `members` reviews of `size` bytes each (a small file that expands a lot).
fn review_bomb(path: &Path, members: usize, size: usize) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for i in 0..members {
        let mut h = tar::Header::new_gnu();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let class = if i % 2 == 0 { "pos" } else { "neg" };
        let name = format!("aclImdb/train/{class}/{i}_7.txt");
        tar.append_data(&mut h, name, std::io::repeat(b'a').take(size as u64)).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

use std::io::Read as _;

#[test]
fn readers_hold_no_more_than_the_input_and_their_caps() {
    let _serial = serial();
    let tmp = scratch("readers");
    let dir = tmp.path();

    // IDX: decompressed once, straight into the final buffer (it used to be held twice).
    let path = dir.join("train-images-idx3-ubyte.gz");
    let bytes = idx_images_gz(&path, 60_000);
    let (peak, read) = peak_of(|| read_idx(&path).map(|a| a.data.len()));
    assert_eq!(read.unwrap(), bytes);
    eprintln!("IDX gzip of {} MiB decompressed: peak {} MiB", bytes / MIB, peak / MIB);
    assert!(peak < bytes + bytes / 4 + 4 * MIB, "IDX of {} MiB peaked at {} MiB", bytes / MIB, peak / MIB);

    // aclImdb: a ~1 MB archive expanding past the total cap is refused at the cap.
    let bomb = dir.join("aclImdb_bomb.tar.gz");
    let member = MIB - 4096;
    review_bomb(&bomb, (MAX_TOTAL_REVIEW_BYTES as usize / member) + 8, member);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 * MIB as u64);
    let (peak, read) = peak_of(|| read_aclimdb(&bomb, Split::Train).map(|r| r.len()));
    let text = read.unwrap_err().to_string();
    assert!(text.contains("aclImdb_bomb.tar.gz") && text.contains("128 MiB"), "{text}");
    let cap = MAX_TOTAL_REVIEW_BYTES as usize;
    eprintln!(
        "review bomb of {} KiB: refused at peak {} MiB",
        std::fs::metadata(&bomb).unwrap().len() >> 10,
        peak / MIB
    );
    assert!(peak < cap + cap / 4 + 8 * MIB, "review bomb peaked at {} MiB (cap {} MiB)", peak / MIB, cap / MIB);

    // A few hundred bytes of configuration declaring 4.3e8 weights allocate none of them.
    let mut small = Sequential::new().add(Dense::new(2)).add(Dense::new(2)).add(Dense::new(2));
    small.build(2).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&small.to_config_json()).unwrap();
    let text =
        cfg.to_string().replace("\"units\":2", "\"units\":12000").replace("\"input_width\":2", "\"input_width\":12000");
    cfg = serde_json::from_str(&text).unwrap();
    let json = cfg.to_string();
    assert!(json.len() < 2048 && json.contains("12000"), "{json}");
    let (peak, built) = peak_of(|| Sequential::from_config_json(&json).map(|_| ()));
    let text = built.unwrap_err().to_string();
    assert!(text.contains("268435456"), "{text}");
    eprintln!("{}-byte config declaring 4.3e8 weights: peak {} KiB", json.len(), peak >> 10);
    assert!(peak < 2 * MIB, "a refused {}-byte config allocated {} KiB", json.len(), peak >> 10);
}

// --- round 3: npz and pickle memory ---

/// Tests measuring the shared counters take this lock, so none counts another's allocations.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A version-1 `.npy` header for `descr` and `shape` (padded as numpy pads it).
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: String = shape.iter().map(|d| format!("{d},")).collect();
    let mut text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
    while (10 + text.len() + 1) % 64 != 0 {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((text.len() as u16).to_le_bytes());
    out.extend(text.as_bytes());
    out
}

/// Raw deflate of `data` from a fresh compressor, ending on a byte boundary (a sync
/// flush), so such pieces can be concatenated into one stream.
fn deflate_piece(data: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    c.compress_vec(data, &mut out, flush).unwrap();
    assert_eq!(c.total_in(), data.len() as u64);
    out
}

/// An `.npz` whose members are `(name, header, body bytes, zero bytes after the body)`,
/// deflated, and written by hand so that a gigabyte of zeros is one compressed mebibyte
/// repeated (the zip writer would take seconds to compress it).
fn npz_file(path: &Path, members: &[(&str, Vec<u8>, &[u8], usize)]) {
    let zeros = vec![0u8; 1 << 20];
    let zero_piece = deflate_piece(&zeros, flate2::FlushCompress::Sync);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, header, body, zero_bytes) in members {
        let mut head = header.clone();
        head.extend(*body);
        let mut data = deflate_piece(&head, flate2::FlushCompress::Sync);
        let mut crc = flate2::Crc::new();
        crc.update(&head);
        for _ in 0..zero_bytes / zeros.len() {
            data.extend(&zero_piece);
            crc.update(&zeros);
        }
        let tail = &zeros[..zero_bytes % zeros.len()];
        data.extend(deflate_piece(tail, flate2::FlushCompress::Sync));
        crc.update(tail);
        data.extend(deflate_piece(&[], flate2::FlushCompress::Finish));
        let name = format!("{name}.npy");
        let size = u32::try_from(head.len() + zero_bytes).unwrap();
        let fields = |out: &mut Vec<u8>| {
            for v in [20u16, 0, 8, 0, 0x21] {
                out.extend(v.to_le_bytes());
            }
            for v in [crc.sum(), data.len() as u32, size] {
                out.extend(v.to_le_bytes());
            }
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
        };
        let offset = out.len() as u32;
        out.extend(0x04034b50u32.to_le_bytes());
        fields(&mut out);
        out.extend(name.as_bytes());
        out.extend(&data);
        central.extend(0x02014b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        fields(&mut central);
        central.extend([0u8; 10]); // comment length, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let central_at = out.len() as u32;
    out.extend(&central);
    out.extend(0x06054b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(central_at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

/// A pickled 1-D object array (py2 protocol 2, as the real `imdb.npz`) of `n` elements,
/// whose data list is built by `list_ops` (opcodes pushing the list, ending on it).
fn pickled_object_array(n: u8, list_ops: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R(K\x01K"
        .to_vec();
    p.push(n);
    p.extend(b"\x85cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89");
    p.extend(list_ops);
    p.extend(b"tb.");
    p
}

/// Two sequences, `[1, 2]` and `[3]`, as an `x_*.npy` member's pickle.
fn two_sequences() -> Vec<u8> {
    pickled_object_array(2, b"](]q\x03(K\x01K\x02e]K\x03ae")
}

#[test]
fn npz_members_are_read_only_when_asked_for_and_checked_before_widening() {
    use kiln_datasets::{ImdbArgs, imdb_load_data, mnist_load_data};
    let _serial = serial();
    let tmp = scratch("npz");
    let dir = tmp.path();
    const GIB: usize = 1 << 30;
    let labels = 1u64.to_le_bytes().iter().chain(&0u64.to_le_bytes()).copied().collect::<Vec<u8>>();

    // imdb.npz whose y_train declares 1 GiB of int8 (it used to be inflated, then widened
    // to 8 GiB of i64): refused from the headers, before any of it is inflated.
    let bomb = dir.join("imdb_int8_bomb.npz");
    let x = two_sequences();
    npz_file(
        &bomb,
        &[
            ("x_train", npy_header("|O", &[2]), &x, 0),
            ("y_train", npy_header("|i1", &[GIB]), &[], GIB),
            ("x_test", npy_header("|O", &[2]), &x, 0),
            ("y_test", npy_header("<i8", &[2]), &labels, 0),
        ],
    );
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 2 * MIB as u64, "{size}");
    let (peak, read) = peak_of(|| imdb_load_data(&bomb, &ImdbArgs::default()).map(|_| ()));
    let text = read.unwrap_err().to_string();
    assert!(text.contains("imdb_int8_bomb.npz") && text.contains("y_train") && text.contains("1073741824"), "{text}");
    eprintln!("imdb.npz of {} KiB declaring a 1 GiB int8 y_train: refused at peak {} KiB", size >> 10, peak >> 10);
    assert!(peak < 2 * MIB, "peak {} KiB", peak >> 10);

    // The same int8 labels read on their own: refused by count before reading, as an
    // integer array widened to i64 holds at most MAX_WIDENED values.
    let (peak, read) = peak_of(|| {
        let mut npz = kiln_datasets::npz::NpzArchive::open(&bomb)?;
        npz.array("y_train").map(|_| ())
    });
    let text = read.unwrap_err().to_string();
    assert!(text.contains("y_train") && text.contains("labels"), "{text}");
    assert!(peak < 2 * MIB, "peak {} KiB", peak >> 10);

    // A member no caller reads (1 GiB of zeros) is never inflated.
    let junk = dir.join("imdb_with_junk.npz");
    npz_file(
        &junk,
        &[
            ("junk", npy_header("|u1", &[GIB]), &[], GIB),
            ("x_train", npy_header("|O", &[2]), &x, 0),
            ("y_train", npy_header("<i8", &[2]), &labels, 0),
            ("x_test", npy_header("|O", &[2]), &x, 0),
            ("y_test", npy_header("<i8", &[2]), &labels, 0),
        ],
    );
    let (peak, read) = peak_of(|| imdb_load_data(&junk, &ImdbArgs::default()).map(|(train, _)| train.x.len()));
    assert_eq!(read.unwrap(), 2);
    eprintln!("imdb.npz with a 1 GiB member nobody reads: peak {} KiB", peak >> 10);
    assert!(peak < 2 * MIB, "peak {} KiB", peak >> 10);

    // mnist.npz: the train split does not inflate x_test; an int8 y_train declaring 1 GiB
    // labels for 2 images is refused before it is read.
    let mnist = dir.join("mnist_bombs.npz");
    let image = vec![7u8; 2 * 784];
    npz_file(
        &mnist,
        &[
            ("x_train", npy_header("|u1", &[2, 28, 28]), &image, 0),
            ("y_train", npy_header("|u1", &[2]), &[3, 4], 0),
            ("x_test", npy_header("|u1", &[GIB / 784, 28, 28]), &[], GIB / 784 * 784),
            ("y_test", npy_header("|i1", &[GIB]), &[], GIB),
        ],
    );
    let (peak, read) = peak_of(|| mnist_load_data(&mnist, Split::Train).map(|s| s.labels));
    assert_eq!(read.unwrap(), [3, 4]);
    assert!(peak < 2 * MIB, "peak {} KiB", peak >> 10);
    let (peak, read) = peak_of(|| mnist_load_data(&mnist, Split::Test).map(|s| s.labels));
    let text = read.unwrap_err().to_string();
    assert!(text.contains("mnist_bombs.npz") && text.contains("y_test"), "{text}");
    assert!(peak < 2 * MIB, "peak {} KiB", peak >> 10);

    // The real thing: the bundled imdb-5k.npz (1.8 MB, 1.2 million word indices) loads
    // within 4× its result (the reader's own part is about 2×: the inflated pickle and the
    // machine's integer lists, which are moved, not copied, into the result).
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("data/imdb-5k/imdb-5k.npz");
    let (peak, read) = peak_of(|| {
        imdb_load_data(&real, &ImdbArgs::default()).map(|(t, _)| t.x.iter().map(|x| 24 + 8 * x.len()).sum::<usize>())
    });
    let result = read.unwrap();
    eprintln!("bundled imdb-5k.npz: result {} MiB, peak {} MiB", result / MIB, peak / MIB);
    assert!(peak < 4 * result, "peak {} MiB for a {} MiB result", peak / MIB, result / MIB);

    // Memo references: one list of 1,000 ints referenced 250,000 times (a 500 KB stream
    // that used to expand into 2 GB of i64, accepted) is refused by name, on little memory.
    let mut ops = b"](]q\x03(".to_vec();
    for i in 0..1000 {
        ops.extend([b'K', (i % 250) as u8]);
    }
    ops.extend(b"ee"); // the ints into the inner list, the inner list into the outer one
    for _ in 0..250 {
        ops.push(b'(');
        for _ in 0..1000 {
            ops.extend(b"h\x03");
        }
        ops.push(b'e');
    }
    let stream = pickled_object_array(1, &ops);
    assert!(stream.len() < 540_000, "{}", stream.len());
    let (peak, read) = peak_of(|| kiln_datasets::pickle::read_sequences(&stream).map(|s| s.len()));
    let text = read.unwrap_err().to_string();
    assert!(text.contains("expands to more than"), "{text}");
    eprintln!(
        "{} KB pickle referencing one list 250,000 times: refused at peak {} MiB",
        stream.len() / 1000,
        peak / MIB
    );
    assert!(peak < 16 * MIB, "peak {} MiB", peak / MIB);
}

// --- round 3: keras import, predict input (issue 23) ---

/// The extra heap `f` needed at its peak on this thread, and its result.
fn peak_of_this_thread<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = THREAD.with(|t| {
        t.peak.set(t.live.get());
        t.live.get()
    });
    let out = f();
    (THREAD.with(|t| t.peak.get() - before).max(0) as usize, out)
}

/// A member of a real Keras fixture archive.
fn fixture_member(archive: &str, member: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/models").join(archive);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut bytes = Vec::new();
    zip.by_name(member).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

/// Finds `needle` in `hay` exactly once.
fn find_once(hay: &[u8], needle: &[u8]) -> usize {
    let at: Vec<usize> = hay.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "pattern found {} times", at.len());
    at[0]
}

/// seq.keras with its first kernel declared `width`×6 and stored as no data at all (HDF5
/// then reads the fill value): a few-kB archive declaring `width`·6 float32 weights, the
/// shape of issue 23's 11 KB archive declaring 0.9 GiB.
fn declared_weights_archive(path: &Path, width: u64) -> usize {
    let mut h5 = fixture_member("seq.keras", "model.weights.h5");
    // Dataspace message v1 of `layers/dense/vars/0`: rank 2, max dims present, (8, 6).
    let mut space = vec![1u8, 2, 1, 0, 0, 0, 0, 0];
    space.extend([8u64, 6, 8, 6].iter().flat_map(|d| d.to_le_bytes()));
    let at = find_once(&h5, &space) + 8;
    for (k, d) in [width, 6, width, 6].iter().enumerate() {
        h5[at + 8 * k..at + 8 * k + 8].copy_from_slice(&d.to_le_bytes());
    }
    // Its contiguous layout message v3 (address, 192 bytes): no storage allocated.
    let size_at = h5.windows(18).position(|w| w[..2] == [3, 1] && w[10..18] == 192u64.to_le_bytes()).unwrap();
    h5[size_at + 2..size_at + 10].copy_from_slice(&[0xff; 8]);
    h5[size_at + 10..size_at + 18].copy_from_slice(&(width * 24).to_le_bytes());
    let config = String::from_utf8(fixture_member("seq.keras", "config.json"))
        .unwrap()
        .replace("[null, 8]", &format!("[null, {width}]"));
    let mut out = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (member, bytes) in [("config.json", config.into_bytes()), ("model.weights.h5", h5)] {
        out.start_file(member, zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap();
    width as usize * 6 * 4
}

#[test]
fn keras_import_and_predict_input_hold_about_what_they_return() {
    // Its allocations would count in the global peak of the tests measured with `peak_of`.
    let _serial = serial();
    let tmp = scratch("keras");
    let dir = tmp.path();

    // Issue 23, finding 10: a small archive declaring 4 MiB of weights. The weights are
    // read straight into the model (no decoded copy, no copy of that, no gradient buffer
    // for a model that only predicts): about 1× what it declares.
    let archive = dir.join("declared.keras");
    let declared = declared_weights_archive(&archive, 175_000);
    assert!(std::fs::metadata(&archive).unwrap().len() < 64 << 10);
    let (peak, model) = peak_of_this_thread(|| kiln_keras::import_keras_file(&archive));
    let model = model.unwrap();
    assert!(model.param_count() * 4 >= declared && model.param_count() * 4 < declared + 4096);
    assert!(model.get_weights().0[0].values.iter().all(|&v| v == 0.0), "the fill value");
    eprintln!("archive declaring {} MiB of weights: peak {} MiB", declared / MIB, peak / MIB);
    assert!(peak < declared + declared / 2, "import peaked at {peak} bytes for {declared} declared");

    // Issue 23, finding 3: 100,000 empty rows against a model a million wide are refused at
    // row 0 without reserving rows × width.
    let rows = dir.join("empty-rows.json");
    std::fs::write(&rows, format!("[{}]", vec!["[]"; 100_000].join(","))).unwrap();
    let (peak, read) = peak_of_this_thread(|| xtask::models::read_rows(&rows, &[1_000_000]));
    let text = read.unwrap_err().to_string();
    assert!(text.contains("empty-rows.json") && text.contains("row 0 has 0 values"), "{text}");
    assert!(peak < MIB, "empty rows peaked at {peak} bytes");

    // A valid 8 MB input costs about its values (4 bytes a number), not a tree of JSON
    // values 19× the file.
    let rows = dir.join("rows.json");
    let row = format!("[{}]", vec!["0.1234567"; 100].join(","));
    let text = format!("[{}]", vec![row.as_str(); 8_000].join(","));
    std::fs::write(&rows, &text).unwrap();
    let (peak, read) = peak_of_this_thread(|| xtask::models::read_rows(&rows, &[100]));
    let values = read.unwrap().rows() * 100 * 4;
    eprintln!("predict input of {} MiB: peak {} MiB", text.len() / MIB, peak / MIB);
    assert!(peak < 2 * values + MIB, "{} bytes of rows peaked at {peak} bytes ({values} of values)", text.len());
}

// --- round 3 (B): keras config expansion, save copies (issue 23 re-test, 8 and 9) ---

/// A `.keras` archive (members deflated) holding `config` and the `model.weights.h5` of
/// seq.keras.
fn config_archive(path: &Path, config: &str) {
    let mut out = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    out.start_file("config.json", deflated).unwrap();
    out.write_all(config.as_bytes()).unwrap();
    out.start_file("model.weights.h5", deflated).unwrap();
    out.write_all(&fixture_member("seq.keras", "model.weights.h5")).unwrap();
    out.finish().unwrap();
}

#[test]
fn keras_configs_are_refused_before_their_json_tree_is_built() {
    let _serial = serial();
    let tmp = scratch("keras-config");
    let dir = tmp.path();
    let input = r#"{"class_name": "InputLayer", "config": {"batch_shape": [null, 8]}}"#;

    // The re-test's drops_compact.keras in small: a Sequential of 20,000 Dropouts. Its JSON
    // tree alone would be ~25× the text (a B-tree node per small object); it is refused by
    // a first pass that builds nothing, naming the count and the cap.
    let drop = r#"{"class_name": "Dropout", "config": {"rate": 0.1}}"#;
    let config = format!(
        r#"{{"class_name": "Sequential", "config": {{"name": "s", "layers": [{input}, {}]}}}}"#,
        vec![drop; 20_000].join(", ")
    );
    let archive = dir.join("dropouts.keras");
    config_archive(&archive, &config);
    assert!(std::fs::metadata(&archive).unwrap().len() < 64 << 10);
    let (peak, got) = peak_of_this_thread(|| kiln_keras::import_keras_file(&archive));
    let text = got.unwrap_err().to_string();
    assert!(text.contains("dropouts.keras") && text.contains("20001 layers, more than the 10000"), "{text}");
    eprintln!("{}-byte config of 20,000 Dropouts: peak {} KiB", config.len(), peak >> 10);
    assert!(peak < 2 * config.len() + MIB, "a {}-byte config peaked at {peak} bytes", config.len());

    // Under the layer cap, a config of small objects is refused on its estimated tree.
    let bomb = format!(
        r#"{{"class_name": "Sequential", "config": {{"layers": [{input}, {drop}]}}, "x": [{}]}}"#,
        vec![r#"{"a": 0}"#; 300_000].join(",")
    );
    let archive = dir.join("objects.keras");
    config_archive(&archive, &bomb);
    let (peak, got) = peak_of_this_thread(|| kiln_keras::import_keras_file(&archive));
    let text = got.unwrap_err().to_string();
    assert!(text.contains("objects.keras") && text.contains("MiB to parse"), "{text}");
    assert!(peak < 2 * bomb.len() + MIB, "a {}-byte config peaked at {peak} bytes", bomb.len());

    // A Value built by the caller is refused on its count too.
    let layers: Vec<serde_json::Value> =
        (0..10_001).map(|_| serde_json::json!({"class_name": "Dropout", "config": {"rate": 0.1}})).collect();
    let err = kiln_keras::model_from_keras(&serde_json::json!({ "layers": layers })).unwrap_err().to_string();
    assert!(err.starts_with("layers: 10001 layers, more than the 10000"), "{err}");

    // A model within both caps is still read whole, at a few times its text.
    let config = format!(
        r#"{{"class_name": "Sequential", "config": {{"name": "s", "layers": [{input}, {}]}}}}"#,
        vec![drop; 2_000].join(", ")
    );
    let (peak, doc) = peak_of_this_thread(|| {
        let path = dir.join("ok.json");
        std::fs::write(&path, &config).unwrap();
        kiln_keras::read_model_config(&path)
    });
    assert!(doc.is_ok());
    assert!(peak < 40 * config.len() + MIB, "a {}-byte config peaked at {peak} bytes", config.len());
}

#[test]
fn save_holds_the_weights_once_more_at_most() {
    let _serial = serial();
    // `save` creates the model folder itself: a fresh path inside the scratch folder.
    let tmp = scratch("save");
    let dir = tmp.path().join("m");
    // The re-test's big_written.keras imported and saved at 4× its weights: the save
    // copied them (get_weights), again into bytes, and again into the file image.
    let mut model = Sequential::new().add(Dense::new(1024)).add(Dense::new(4));
    model.build(1024).unwrap();
    let weights = model.param_count() * 4;
    let (peak, saved) = peak_of_this_thread(|| model.save(&dir));
    saved.unwrap();
    eprintln!("save of {} MiB of weights: peak {} MiB", weights / MIB, peak / MIB);
    assert!(peak < weights + weights / 4, "a save of {weights} bytes of weights peaked at {peak} bytes");
    let back = Sequential::load(&dir).unwrap();
    assert_eq!(back.get_weights().0, model.get_weights().0);
}

// --- round 3: parity traces (issue 23, round B) ---

/// Round B #4: a trace whose config declares a 4-million-weight model but carries 75
/// weights is refused before the model is built: the replay's peak stays far below the
/// 16 MB that model would take.
#[test]
fn a_trace_is_checked_against_its_weights_before_the_model_is_built() {
    let _serial = serial();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/keras_trace_ii_l2.json");
    let mut t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cfg = &mut t["model"]["config"];
    cfg["build_input_shape"] = serde_json::json!([null, 2000]);
    cfg["layers"][0]["config"]["batch_shape"] = serde_json::json!([null, 2000]);
    cfg["layers"][1]["config"]["units"] = serde_json::json!(2000);
    cfg["layers"][1]["build_config"]["input_shape"] = serde_json::json!([null, 2000]);
    let (peak, out) = peak_of_this_thread(|| kiln_keras::replay(&t, 1e-5).map(|r| r.passed()));
    let err = out.unwrap_err().to_string();
    assert!(err.starts_with("initial_weights:") && err.contains("4008003"), "{err}");
    assert!(peak < MIB, "a refused trace peaked at {peak} bytes");
}

// --- round 3b: npz budgets tied to the compressed size, pickle containers in bytes ---

/// A 2-million-int `x_train` pickled as `K\x00` in `APPENDS` batches deflates to a few KB:
/// it used to be read (16 MiB of `i64`; the hostile 68 KB version, 2 × 2²⁴ ints, reached
/// 532 MB). The inflated stream and the integers now follow the member's compressed size.
#[test]
fn a_pickle_deflated_a_thousandfold_is_refused_on_little_memory() {
    use kiln_datasets::{ImdbArgs, imdb_load_data};
    let _serial = serial();
    let tmp = scratch("deflate");
    let dir = tmp.path();
    let mut ops = b"]]".to_vec();
    for _ in 0..40 {
        ops.push(b'(');
        for _ in 0..50_000 {
            ops.extend(b"K\x00");
        }
        ops.push(b'e');
    }
    ops.push(b'a');
    let stream = pickled_object_array(1, &ops);
    let bomb = dir.join("imdb_deflate_bomb.npz");
    npz_file(
        &bomb,
        &[
            ("x_train", npy_header("|O", &[1]), &stream, 0),
            ("y_train", npy_header("<i8", &[1]), &[0; 8], 0),
            ("x_test", npy_header("|O", &[2]), &two_sequences(), 0),
            ("y_test", npy_header("<i8", &[2]), &[0; 16], 0),
        ],
    );
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 64 << 10, "{size}");
    let (peak, read) = peak_of(|| imdb_load_data(&bomb, &ImdbArgs::default()).map(|_| ()));
    let text = read.unwrap_err().to_string();
    eprintln!("imdb.npz of {} KiB pickling 2 million ints: refused at peak {} KiB", size >> 10, peak >> 10);
    assert!(text.contains("imdb_deflate_bomb.npz") && text.contains("x_train"), "{text}");
    assert!(text.contains("inflating to more than 16×"), "{text}");
    assert!(peak < 2 * MIB, "peak {} KiB", peak >> 10);
}

/// 400,000 empty lists appended to one list (a 400 KB stream): about 130 bytes each, 50 MB
/// in all, accepted while containers were counted as 800,000 "items" of 32 bytes. Now each
/// is charged its real bytes against a budget of 32 bytes per stream byte (12.8 MB here).
#[test]
fn pickled_containers_are_charged_their_real_bytes() {
    let _serial = serial();
    let mut ops = b"]".to_vec();
    for _ in 0..8 {
        ops.push(b'(');
        ops.extend(std::iter::repeat_n(b']', 50_000));
        ops.push(b'e');
    }
    let stream = pickled_object_array(1, &ops);
    let (peak, read) = peak_of(|| kiln_datasets::pickle::read_sequences(&stream).map(|s| s.len()));
    let text = read.unwrap_err().to_string();
    eprintln!("{} KB pickle of 400,000 empty lists: refused at peak {} MiB", stream.len() / 1000, peak / MIB);
    assert!(text.contains("containers and the memo would take more than 12 MiB"), "{text}");
    assert!(peak < 24 * MIB, "peak {} MiB", peak / MIB);
    // 5,000 such lists (empty sequences) are within the budget's 1 MiB floor.
    let mut ops = b"](".to_vec();
    ops.extend(std::iter::repeat_n(b']', 5_000));
    ops.push(b'e');
    let read = kiln_datasets::pickle::read_sequences(&pickled_object_array(1, &ops));
    assert_eq!(read.map(|s| s.len()), Ok(5_000));
}

/// Issue 25: a hostile shaped configuration — a Conv2D on `[4096, 4096, 3]` images at
/// batch 512 — is refused from its planned shapes, naming the layer, before any
/// activation buffer exists; `fit` makes the same check before its first batch.
#[test]
fn a_huge_activation_plan_is_refused_naming_the_layer_before_allocating() {
    let _turn = serial();
    let mut huge = Sequential::new().input_shape([4096, 4096, 3]).add(Conv2D::new(32, [3, 3])).add(Flatten::new());
    // Building creates the 896 weights only: every output buffer still has zero rows.
    huge.build(4096 * 4096 * 3).unwrap();
    assert!(huge.layers().iter().all(|l| l.output().rows() == 0));
    let err = huge.check_activations(512).unwrap_err().to_string();
    assert!(err.contains("conv2d") && err.contains("(None, 4094, 4094, 32)") && err.contains("batch of 512"), "{err}");
    // Through fit, with a budget scaled down so the data stays small: 64×64×3 images.
    let mut model = Sequential::new()
        .input_shape([64, 64, 3])
        .max_activations(1 << 20)
        .add(Conv2D::new(32, [3, 3]))
        .add(Flatten::new())
        .add(Dense::new(2));
    model.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
    let x = Matrix::zeros(64, 64 * 64 * 3);
    let y = Matrix::zeros(64, 1);
    let err = model.fit(&x, &y, FitOptions::default().batch_size(64).verbose(Verbosity::Silent)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("conv2d") && text.contains("max_activations"), "{text}");
    assert!(model.layers().iter().all(|l| l.output().rows() == 0), "nothing sized before the refusal");
}

/// Issue 26: windows over the weather series' shape (43,824 hours × 10 features, windows of
/// 120 steps) train from start positions. Materialized, the windows would take 210 MB;
/// training one epoch on them holds the series, the targets and one batch.
#[test]
fn timeseries_windows_cost_the_series_plus_one_batch() {
    let _turn = serial();
    let (rows, features, steps) = (43_824, 10, 120);
    let mut rng = Rng::seed_from_u64(9);
    let series =
        Matrix::from_vec(rows, features, (0..rows * features).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap();
    let targets = Matrix::from_vec(rows, 1, (0..rows).map(|r| series.get(r, 1)).collect()).unwrap();
    let series = std::sync::Arc::new(series);
    let opts = WindowOptions::new(steps);
    let (peak, _) = peak_of_this_thread(|| {
        let (windows, y) = Windows::new(series.clone(), Some(&targets), &opts).unwrap();
        assert_eq!((windows.len(), windows.sample_dims()), (rows - steps + 1, [steps, features]));
        let mut model = Sequential::new().add(Flatten::new()).add(Dense::new(1));
        model.compile(RMSprop::default(), Loss::mean_squared_error(), NO_METRICS).unwrap();
        let opts = FitOptions::default().epochs(1).batch_size(256).verbose(Verbosity::Silent);
        model.fit(&Features::Windows(windows), &y.unwrap(), opts).unwrap();
        assert_eq!(model.model_input_shape().unwrap().dims(), &[steps, features], "the windows' shape");
    });
    let materialized = (rows - steps + 1) * steps * features * 4;
    assert!(peak < 12 << 20, "peak {peak} bytes (materialized windows: {materialized})");
    eprintln!(
        "windows: peak {:.1} MB during fit, against {:.0} MB materialized",
        peak as f64 / 1e6,
        materialized as f64 / 1e6
    );
}
