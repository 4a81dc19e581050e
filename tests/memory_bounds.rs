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
}

// SAFETY: forwards every call to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
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
