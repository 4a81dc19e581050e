//! IMDB (aclImdb): the bundled subset, archive vs directory, order, and bad input.

mod common;

use std::fs;

use common::{TempDir, assert_names, imdb_archive, write_tar_gz};
use kiln_datasets::{Error, Loader, Origin, Source, Split, read_aclimdb};

fn quiet() -> Loader {
    Loader { verbose: false, download: false, ..Loader::from_env() }
}

#[test]
fn bundled_archive_has_5000_reviews_sorted_by_path() {
    let r = read_aclimdb(&imdb_archive(), Split::Train).unwrap();
    assert_eq!(r.len(), 5000);
    assert_eq!(r.label_counts(), [2483, 2517]);
    assert_eq!(r.paths[0], "aclImdb/train/neg/10001_4.txt");
    assert!(r.paths.windows(2).all(|w| w[0] < w[1]));
    assert!(r.paths.iter().zip(&r.labels).all(|(p, &l)| p.contains(if l == 1 { "/pos/" } else { "/neg/" })));
    assert_eq!(r.lossy_decoded, 0);
    assert!(r.texts.iter().all(|t| !t.is_empty()));
}

#[test]
fn seeded_shuffle_is_reproducible_and_the_validation_tail_has_both_classes() {
    let a = quiet().imdb(&Source::Bundled, Split::Train, 7).unwrap();
    let b = quiet().imdb(&Source::Bundled, Split::Train, 7).unwrap();
    let c = quiet().imdb(&Source::Bundled, Split::Train, 8).unwrap();
    assert_eq!(a.data.paths, b.data.paths);
    assert_ne!(a.data.paths, c.data.paths);
    assert_eq!(a.provenance.origin, Origin::Bundled);
    assert_eq!(a.provenance.label_counts, vec![2483, 2517]);
    // validation_split=0.4 holds out the last 2,000.
    let tail = &a.data.labels[3000..];
    let pos = tail.iter().filter(|&&l| l == 1).count();
    assert!(pos > 800 && pos < 1200, "{pos} positives in the validation tail");
    let mut sorted = a.data.paths.clone();
    sorted.sort();
    assert_eq!(sorted, read_aclimdb(&imdb_archive(), Split::Train).unwrap().paths);
}

#[test]
fn an_extracted_directory_reads_like_the_archive() {
    let t = TempDir::new("imdb-extract");
    let file = fs::File::open(imdb_archive()).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file)).unpack(&t.0).unwrap();
    let from_archive = read_aclimdb(&imdb_archive(), Split::Train).unwrap();
    assert_eq!(read_aclimdb(&t.join("aclImdb"), Split::Train).unwrap(), from_archive);
    assert_eq!(read_aclimdb(&t.0, Split::Train).unwrap(), from_archive);
    // The bundled folder (holding only the archive) works as a Path source too.
    let via_dir = quiet().imdb(&Source::Path(imdb_archive().parent().unwrap().into()), Split::Train, 0).unwrap();
    assert_eq!(via_dir.data.len(), 5000);
}

#[test]
fn an_archive_without_pos_and_neg_is_an_error() {
    let t = TempDir::new("imdb-nopos");
    let p = t.join("aclImdb_v1.tar.gz");
    write_tar_gz(&p, &[("aclImdb/train/unsup/1_0.txt", b"unlabelled"), ("aclImdb/README", b"hi")]);
    assert_names(&read_aclimdb(&p, Split::Train).unwrap_err(), &p, "no aclImdb/train/neg or pos/*.txt");
    let q = t.join("only-pos.tar.gz");
    write_tar_gz(&q, &[("aclImdb/train/pos/1_9.txt", b"great")]);
    let e = read_aclimdb(&q, Split::Train).unwrap_err();
    assert_names(&e, &q, "no aclImdb/train/neg/*.txt");
    assert_names(&e, &q, "found 0 neg, 1 pos");
    // The bundled subset has no test split.
    assert_names(&read_aclimdb(&imdb_archive(), Split::Test).unwrap_err(), &imdb_archive(), "aclImdb/test/neg or pos");
}

#[test]
fn non_utf8_reviews_are_decoded_lossily_and_counted() {
    let t = TempDir::new("imdb-latin1");
    let p = t.join("aclImdb.tar.gz");
    write_tar_gz(
        &p,
        &[
            ("aclImdb/train/pos/2_9.txt", "très bien".as_bytes()),
            ("aclImdb/train/neg/1_1.txt", b"tr\xe8s mal"),
            ("aclImdb/train/neg/3_2.txt", b"bad"),
        ],
    );
    let r = read_aclimdb(&p, Split::Train).unwrap();
    assert_eq!(r.lossy_decoded, 1);
    assert_eq!(r.lossy_paths, vec!["aclImdb/train/neg/1_1.txt".to_string()]);
    assert_eq!(r.texts[0], "tr\u{fffd}s mal");
    assert_eq!(r.texts[2], "très bien");
    let loaded = quiet().imdb(&Source::Path(p), Split::Train, 1).unwrap();
    assert_eq!(loaded.provenance.lossy_decoded, 1);
    assert!(loaded.provenance.message.contains("1 files were not valid UTF-8"), "{}", loaded.provenance.message);
}

#[test]
fn truncated_and_non_tar_archives_name_the_file() {
    let t = TempDir::new("imdb-trunc");
    let bytes = fs::read(imdb_archive()).unwrap();
    let p = t.join("aclImdb_v1.tar.gz");
    fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    assert_names(&read_aclimdb(&p, Split::Train).unwrap_err(), &p, "corrupt or truncated archive");
    let q = t.join("labels.tar.gz");
    fs::copy(common::mnist_dir().join("train-labels-idx1-ubyte.gz"), &q).unwrap();
    assert!(read_aclimdb(&q, Split::Train).unwrap_err().to_string().contains("labels.tar.gz"));
}

#[test]
fn empty_and_missing_directories_are_errors() {
    let t = TempDir::new("imdb-dirs");
    assert_names(&read_aclimdb(&t.0, Split::Train).unwrap_err(), &t.0, "empty directory");
    fs::write(t.join("notes.txt"), b"x").unwrap();
    assert_names(&read_aclimdb(&t.0, Split::Train).unwrap_err(), &t.0, "no aclImdb/train/pos and neg");
    let missing = t.join("aclImdb_v1.tar.gz");
    let e = read_aclimdb(&missing, Split::Train).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_names(&e, &missing, "no such file");
}
