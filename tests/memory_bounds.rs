//! Memory is bounded by what an input really holds, measured under a counting global
//! allocator: the peak of live heap bytes while a reader runs, minus what was live before.
//! One test runs the cases in turn, so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
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

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let dir = scratch();

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
    let dir = std::env::temp_dir().join(format!("kiln-memory-keras-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

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
    let (peak, read) = peak_of_this_thread(|| xtask::models::read_rows(&rows, 1_000_000));
    let text = read.unwrap_err().to_string();
    assert!(text.contains("empty-rows.json") && text.contains("row 0 has 0 values"), "{text}");
    assert!(peak < MIB, "empty rows peaked at {peak} bytes");

    // A valid 8 MB input costs about its values (4 bytes a number), not a tree of JSON
    // values 19× the file.
    let rows = dir.join("rows.json");
    let row = format!("[{}]", vec!["0.1234567"; 100].join(","));
    let text = format!("[{}]", vec![row.as_str(); 8_000].join(","));
    std::fs::write(&rows, &text).unwrap();
    let (peak, read) = peak_of_this_thread(|| xtask::models::read_rows(&rows, 100));
    let values = read.unwrap().rows() * 100 * 4;
    eprintln!("predict input of {} MiB: peak {} MiB", text.len() / MIB, peak / MIB);
    assert!(peak < 2 * values + MIB, "{} bytes of rows peaked at {peak} bytes ({values} of values)", text.len());
}
