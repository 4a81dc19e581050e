//! MNIST / IDX: the bundled subset and every kind of bad input.

mod common;

use std::fs;

use common::{TempDir, assert_names, gzip, idx_bytes, mnist_dir};
use kiln_datasets::{
    Error, Loader, Origin, Source, Split, read_idx_dir, read_idx_images, read_idx_labels, read_idx_pair,
};
use sha2::{Digest, Sha256};

fn quiet() -> Loader {
    Loader { verbose: false, download: false, ..Loader::from_env() }
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Label counts of the bundled `mnist-10k`, as documented in `data/README.md`.
const MNIST_10K_LABEL_COUNTS: [usize; 10] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

#[test]
fn bundled_mnist_is_10000_by_784_bytes_with_the_documented_labels() {
    let loaded = quiet().mnist(&Source::Bundled, Split::Train).unwrap();
    let set = &loaded.data;
    assert_eq!((set.images.rows(), set.images.cols(), set.height, set.width), (10_000, 784, 28, 28));
    assert_eq!(set.label_counts(), MNIST_10K_LABEL_COUNTS);
    assert_eq!(loaded.provenance.origin, Origin::Bundled);
    assert!(loaded.provenance.subset);
    assert_eq!(loaded.provenance.rows, 10_000);
    assert_eq!(loaded.provenance.label_counts, MNIST_10K_LABEL_COUNTS);

    // Every byte was read: header + pixels hash to the decompressed sha256 recorded in
    // docs/datasets.md (computed independently of this crate).
    let mut raw = idx_bytes(0x0803, &[10_000, 28, 28], set.images.as_slice());
    assert_eq!(sha(&raw), "fe7f1ff2d7c420d8a64ed0ec2a302b77e225bfeb5f6b0a88b35755f52af0fc4b");
    raw = idx_bytes(0x0801, &[10_000], &set.labels);
    assert_eq!(sha(&raw), "67568b8d378fe8523ec1f1a5469142dd7d93de710b1f6ca8afc9bd1116835583");

    // Pixels stay bytes; scaling happens per batch.
    let batch = set.images.to_f32(255.0);
    assert!(batch.as_slice().iter().all(|&x| (0.0..=1.0).contains(&x)));
    assert!(set.images.as_slice().contains(&255));
}

#[test]
fn directory_and_pair_readers_agree_and_a_missing_split_is_an_error() {
    let dir = mnist_dir();
    let a = read_idx_dir(&dir, Split::Train).unwrap();
    let b = read_idx_pair(&dir.join("train-images-idx3-ubyte.gz"), &dir.join("train-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(a, b);
    let e = read_idx_dir(&dir, Split::Test).unwrap_err();
    assert!(e.to_string().contains("no t10k-images-idx3-ubyte"), "{e}");
    let e = quiet().mnist(&Source::Bundled, Split::Test).unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
}

#[test]
fn uncompressed_files_with_dotted_names_are_read_too() {
    let t = TempDir::new("mnist-plain");
    let images = idx_bytes(0x0803, &[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7]);
    fs::write(t.join("t10k-images.idx3-ubyte"), &images).unwrap();
    fs::write(t.join("t10k-labels.idx1-ubyte"), idx_bytes(0x0801, &[2], &[7, 3])).unwrap();
    let set = quiet().mnist(&Source::Path(t.0.clone()), Split::Test).unwrap();
    assert_eq!(set.data.labels, vec![7, 3]);
    assert_eq!(set.data.images.row(1), &[4, 5, 6, 7]);
    assert_eq!(set.provenance.origin, Origin::Path);
}

#[test]
fn truncated_gzip_names_the_file() {
    let t = TempDir::new("mnist-trunc");
    let full = fs::read(mnist_dir().join("train-images-idx3-ubyte.gz")).unwrap();
    let p = t.join("train-images-idx3-ubyte.gz");
    fs::write(&p, &full[..full.len() / 2]).unwrap();
    let e = read_idx_images(&p).unwrap_err();
    assert!(matches!(e, Error::Gzip { .. }), "{e:?}");
    assert_names(&e, &p, "truncated");
}

#[test]
fn empty_gzip_file_names_the_file() {
    let t = TempDir::new("mnist-empty-gz");
    let p = t.join("train-labels-idx1-ubyte.gz");
    fs::write(&p, b"").unwrap();
    assert_names(&read_idx_labels(&p).unwrap_err(), &p, "empty file");
}

#[test]
fn wrong_magic_names_the_file() {
    let t = TempDir::new("mnist-magic");
    let p = t.join("train-images-idx3-ubyte");
    fs::write(&p, b"<html>not found</html>").unwrap();
    assert_names(&read_idx_images(&p).unwrap_err(), &p, "wrong magic number");
    // A label file where an image file is expected.
    let q = t.join("labels-as-images-idx3-ubyte.gz");
    fs::write(&q, gzip(&idx_bytes(0x0801, &[3], &[1, 2, 3]))).unwrap();
    assert_names(&read_idx_images(&q).unwrap_err(), &q, "needs 3 dimensions");
}

#[test]
fn header_counts_disagreeing_with_the_bytes_name_the_file() {
    let t = TempDir::new("mnist-count");
    let short = t.join("short-labels-idx1-ubyte.gz");
    fs::write(&short, gzip(&idx_bytes(0x0801, &[10], &[1; 9]))).unwrap();
    assert_names(&read_idx_labels(&short).unwrap_err(), &short, "declares 10 = 10 data bytes but the file holds 9");
    let long = t.join("long-images-idx3-ubyte");
    fs::write(&long, idx_bytes(0x0803, &[1, 2, 2], &[0; 5])).unwrap();
    assert_names(&read_idx_images(&long).unwrap_err(), &long, "trailing bytes");
}

#[test]
fn image_and_label_counts_that_disagree_name_both_files() {
    let t = TempDir::new("mnist-pair");
    let (i, l) = (t.join("train-images-idx3-ubyte"), t.join("train-labels-idx1-ubyte"));
    fs::write(&i, idx_bytes(0x0803, &[3, 1, 2], &[0; 6])).unwrap();
    fs::write(&l, idx_bytes(0x0801, &[4], &[0; 4])).unwrap();
    let e = read_idx_dir(&t.0, Split::Train).unwrap_err();
    assert!(matches!(e, Error::Mismatch { .. }));
    assert_names(&e, &i, "3 images but 4 labels");
    assert_names(&e, &l, "labels");
}

#[test]
fn empty_directory_missing_labels_and_missing_path_are_errors() {
    let t = TempDir::new("mnist-dirs");
    assert_names(&read_idx_dir(&t.0, Split::Train).unwrap_err(), &t.0, "empty directory");
    fs::write(t.join("train-images-idx3-ubyte"), idx_bytes(0x0803, &[1, 1, 1], &[0])).unwrap();
    assert_names(&read_idx_dir(&t.0, Split::Train).unwrap_err(), &t.0, "no train-labels-idx1-ubyte");
    let missing = t.join("nowhere");
    let e = quiet().mnist(&Source::Path(missing.clone()), Split::Train).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_names(&e, &missing, "no such file or directory");
}

#[test]
fn fashion_mnist_reads_any_idx_directory_and_has_no_bundled_subset() {
    let l = Loader { system_dirs: false, ..quiet() };
    let e = l.fashion_mnist(&Source::Bundled, Split::Train).unwrap_err();
    assert!(e.to_string().contains("fashion-mnist train (bundled) is not available"), "{e}");
    let e = l.fashion_mnist(&Source::Full, Split::Train).unwrap_err();
    assert!(e.to_string().contains("downloads are disabled"), "{e}");
    let set = l.fashion_mnist(&Source::Path(mnist_dir()), Split::Train).unwrap();
    assert_eq!(set.data.len(), 10_000);
    assert_eq!(set.provenance.dataset, kiln_datasets::Dataset::FashionMnist);
}
