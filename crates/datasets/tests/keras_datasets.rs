//! Keras' dataset files: `imdb.load_data` argument for argument against Keras' own answers
//! on archives written four ways (Python 2's protocol 2, numpy's `savez`, protocols 3 and 5),
//! numpy's `RandomState.shuffle` against numpy's permutations, and `mnist.npz`.
//! The fixtures and answers come from `fixtures/keras-datasets/make_fixtures.py`.

use std::path::{Path, PathBuf};

use kiln_datasets::random_state::RandomState;
use kiln_datasets::{ImdbArgs, Split, imdb_load_data, mnist_load_data, vectorize_sequences};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras-datasets")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

#[test]
fn random_state_shuffle_equals_numpys_permutations() {
    let doc = json("random_state.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let (seed, n) = (case["seed"].as_u64().unwrap() as u32, case["n"].as_u64().unwrap() as usize);
        let mut rng = RandomState::new(seed);
        for which in ["first", "second"] {
            let mut idx: Vec<i64> = (0..n as i64).collect();
            rng.shuffle(&mut idx);
            let want = &case[which];
            let head: Vec<i64> = want["head"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(idx[..head.len()], head[..], "seed {seed}, n {n}, {which} shuffle");
            let bytes: Vec<u8> = idx.iter().flat_map(|v| v.to_le_bytes()).collect();
            let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(sha, want["sha256"].as_str().unwrap(), "seed {seed}, n {n}, {which} shuffle");
        }
    }
}

/// Keras' keyword arguments as [`ImdbArgs`] (absent: Keras' default; `null`: `None`).
fn args_of(v: &Value) -> ImdbArgs {
    let mut a = ImdbArgs::default();
    let opt = |key: &str, default: Option<i64>| match v.get(key) {
        None => default,
        Some(Value::Null) => None,
        Some(x) => Some(x.as_i64().unwrap()),
    };
    a.num_words = opt("num_words", None);
    a.skip_top = opt("skip_top", Some(0)).unwrap();
    a.maxlen = opt("maxlen", None).map(|m| m as usize);
    a.seed = opt("seed", Some(113)).unwrap() as u32;
    a.start_char = opt("start_char", Some(1));
    a.oov_char = opt("oov_char", Some(2));
    a.index_from = opt("index_from", Some(3));
    a
}

fn seqs(v: &Value) -> Vec<Vec<i64>> {
    v.as_array().unwrap().iter().map(|s| s.as_array().unwrap().iter().map(|w| w.as_i64().unwrap()).collect()).collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|w| w.as_i64().unwrap()).collect()
}

#[test]
fn imdb_load_data_equals_keras_for_every_file_and_argument_set() {
    let doc = json("imdb_load_data.json");
    let cases = doc["cases"].as_array().unwrap();
    let (mut same, mut refused) = (0, 0);
    for case in cases {
        let file = fixtures().join(case["file"].as_str().unwrap());
        let args = args_of(&case["args"]);
        let got = imdb_load_data(&file, &args);
        let label = format!("{} {}", case["file"], case["args"]);
        if let Some(keras_error) = case.get("error").and_then(Value::as_str) {
            let ours = got.expect_err(&format!("{label}: Keras raised {keras_error}")).to_string();
            let key = if keras_error.contains("maxlen") {
                "maxlen"
            } else if keras_error.contains("os.system") {
                "refusing to deserialize `os.system`"
            } else {
                "index_from=None"
            };
            assert!(ours.contains(key), "{label}: {ours} (Keras: {keras_error})");
            refused += 1;
            continue;
        }
        let (train, test) = got.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(train.x, seqs(&case["x_train"]), "{label}: x_train");
        assert_eq!(train.y, ints(&case["y_train"]), "{label}: y_train");
        assert_eq!(test.x, seqs(&case["x_test"]), "{label}: x_test");
        assert_eq!(test.y, ints(&case["y_test"]), "{label}: y_test");
        same += 1;
    }
    assert_eq!((same, refused), (48, 9), "cases compared and refused");
}

#[test]
fn vectorize_sequences_is_the_notebooks_multi_hot() {
    let m = vectorize_sequences(&[vec![1, 3, 3, 0], vec![], vec![4]], 5).unwrap();
    assert_eq!((m.rows(), m.cols()), (3, 5));
    assert_eq!(m.row(0), (&[0u32, 1, 3][..], &[1.0f32, 1.0, 1.0][..]));
    assert_eq!(m.row(1).0.len(), 0);
    let err = vectorize_sequences(&[vec![5]], 5).unwrap_err().to_string();
    assert!(err.contains("index 5") && err.contains("0..5"), "{err}");
}

#[test]
fn mnist_npz_reads_as_keras_returns_it() {
    let path = fixtures().join("mnist_tiny.npz");
    let train = mnist_load_data(&path, Split::Train).unwrap();
    assert_eq!((train.images.rows(), train.images.cols(), train.height, train.width), (6, 784, 28, 28));
    assert_eq!(train.labels, [5, 0, 4, 1, 9, 2]);
    let test = mnist_load_data(&path, Split::Test).unwrap();
    assert_eq!(test.labels, [7, 2, 1]);
    let err = mnist_load_data(&fixtures().join("imdb_numpy_savez.npz"), Split::Train).unwrap_err().to_string();
    assert!(err.contains("imdb_numpy_savez.npz") && err.contains("x_train"), "{err}");
}

#[test]
fn the_bundled_keras_form_subset_loads_as_the_notebook_would_see_it() {
    let loader = kiln_datasets::Loader { verbose: false, ..kiln_datasets::Loader::from_env() };
    let args = ImdbArgs { num_words: Some(10_000), ..ImdbArgs::default() };
    let loaded = loader.keras_imdb(&kiln_datasets::Source::Bundled, &args).unwrap();
    let train = &loaded.data.train;
    assert_eq!(train.x.len(), 5_000);
    assert!(loaded.data.test.x.is_empty());
    assert_eq!(loaded.provenance.label_counts, [2_483, 2_517]);
    assert!(train.x.iter().all(|s| s[0] == 1 && s[1..].iter().all(|&w| (2..10_000).contains(&w))));
    // "the" is the most frequent word: raw rank 1, shifted by index_from=3.
    let fours = train.x.iter().filter(|s| s.contains(&4)).count();
    assert!(fours > 4_900, "{fours} reviews contain `the`");
    let m = vectorize_sequences(&train.x, 10_000).unwrap();
    assert_eq!((m.rows(), m.cols()), (5_000, 10_000));
}

// --- round 3: imdb.npz labels and deep pickles ---

/// A version-1 `.npy` member: header for `descr` and `shape`, then `body`.
fn npy(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let dims: String = shape.iter().map(|d| format!("{d},")).collect();
    let mut text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
    while (10 + text.len() + 1) % 64 != 0 {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((text.len() as u16).to_le_bytes());
    out.extend(text.as_bytes());
    out.extend(body);
    out
}

/// A fresh scratch folder. A TempDir: removed when the test ends, even on panic.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("kiln-{name}-")).tempdir().unwrap()
}

/// An `.npz` of deflated members, written to `dir/name`.
fn npz(dir: &Path, name: &str, members: &[(&str, Vec<u8>)]) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (member, bytes) in members {
        zip.start_file(format!("{member}.npy"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// A pickled 1-D object array (py2 protocol 2) of `n` elements whose data list is pushed
/// by `list_ops`.
fn pickled_object_array(n: u8, list_ops: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R(K\x01K"
        .to_vec();
    p.push(n);
    p.extend(b"\x85cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89");
    p.extend(list_ops);
    p.extend(b"tb.");
    p
}

fn labels(values: &[i64]) -> Vec<u8> {
    npy("<i8", &[values.len()], &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

/// Labels other than 0/1 are refused when the file is loaded, naming the file, the array
/// and the index (issue 23, finding 16: they were caught only at training, unnamed).
#[test]
fn imdb_labels_other_than_0_and_1_are_refused_at_load_by_name() {
    let tmp = scratch("keras-datasets");
    let x = npy("|O", &[3], &pickled_object_array(3, b"](]K\x05a]K\x06a]K\x07ae"));
    for (bad, at) in [(2i64, 1usize), (-1, 2)] {
        let mut y = vec![0i64, 1, 0];
        y[at] = bad;
        let name = format!("imdb_label_{bad}.npz");
        let path = npz(
            tmp.path(),
            &name,
            &[("x_train", x.clone()), ("y_train", labels(&[1, 0, 1])), ("x_test", x.clone()), ("y_test", labels(&y))],
        );
        let err = imdb_load_data(&path, &ImdbArgs::default()).unwrap_err().to_string();
        assert!(
            err.contains(&name) && err.contains("`y_test`") && err.contains(&format!("{bad} at index {at}")),
            "{err}"
        );
    }
    // As many labels as sequences, checked from the headers.
    let path = npz(
        tmp.path(),
        "imdb_label_count.npz",
        &[("x_train", x.clone()), ("y_train", labels(&[1, 0])), ("x_test", x.clone()), ("y_test", labels(&[1, 0, 1]))],
    );
    let err = imdb_load_data(&path, &ImdbArgs::default()).unwrap_err().to_string();
    assert!(err.contains("`x_train` declares 3 sequences") && err.contains("`y_train`"), "{err}");
}

/// A 3 KB `imdb.npz` whose `x_train` pickle is 10⁶ `TUPLE1` then `POP` (a megabyte that
/// deflates to almost nothing) used to kill the process with a stack overflow; it is
/// refused with an error naming the file and the limit.
#[test]
fn a_two_kilobyte_imdb_npz_of_nested_tuples_is_refused_not_a_crash() {
    let mut p = b"\x80\x02K\x01".to_vec();
    p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
    p.extend(b"0.");
    let y = labels(&[1]);
    let tmp = scratch("keras-datasets");
    let path = npz(
        tmp.path(),
        "imdb_deep.npz",
        &[("x_train", npy("|O", &[1], &p)), ("y_train", y.clone()), ("x_test", npy("|O", &[1], &p)), ("y_test", y)],
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 8 * 1024, "{size} bytes");
    let err = imdb_load_data(&path, &ImdbArgs::default()).unwrap_err().to_string();
    // Refused before parsing now (it inflates 1,000×; the depth limit is tested in
    // `pickle`), by either limit.
    let limit = err.contains("nested more than 64") || err.contains("inflating to more than 16×");
    assert!(err.contains("imdb_deep.npz") && err.contains("x_train") && limit, "{err}");
}

// --- round 3b: mnist.npz shapes and labels ---

/// A `.npy` member: `(name, descr, shape, data)`.
type Member<'a> = (&'a str, &'a str, &'a [usize], &'a [u8]);

/// An `.npz` of deflated `.npy` members, written to `dir/name`.
fn mnist_like(dir: &Path, name: &str, members: &[Member]) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (member, descr, shape, data) in members {
        let dims: String = shape.iter().map(|d| format!("{d},")).collect();
        let text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}\n");
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend((text.len() as u16).to_le_bytes());
        npy.extend(text.as_bytes());
        npy.extend(*data);
        zip.start_file(format!("{member}.npy"), options).unwrap();
        zip.write_all(&npy).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// Zero-width images declaring 2 million rows used to load as "2000000 rows" (the hostile
/// 274 KB file declared 2×10⁸ and reached 990 MB), and 1×1 "images" trained silently as
/// MNIST (issue 23, finding 7): anything but [N, 28, 28] with N > 0 is refused by shape,
/// naming the file, the array and the shape; a label outside 0..=9 is named with its index.
#[test]
fn mnist_npz_refuses_other_shapes_and_labels_by_name() {
    let zeros = vec![0u8; 2_000_000];
    let image = [0u8; 784];
    let minus_one = (-1i64).to_le_bytes();
    let tmp = scratch("mnist-shapes");
    let cases: [(&str, Vec<Member>, &str); 6] = [
        (
            "zero_w.npz",
            vec![("x_train", "|u1", &[2_000_000, 0, 28], &[]), ("y_train", "|u1", &[2_000_000], &zeros)],
            "`x_train` is uint8 [2000000, 0, 28], not uint8 images [N, 28, 28]",
        ),
        (
            "one_px.npz",
            vec![("x_train", "|u1", &[3, 1, 1], &[0, 0, 0]), ("y_train", "|u1", &[3], &[1, 2, 3])],
            "`x_train` is uint8 [3, 1, 1], not uint8 images [N, 28, 28]",
        ),
        (
            "empty.npz",
            vec![("x_train", "|u1", &[0, 28, 28], &[]), ("y_train", "|u1", &[0], &[])],
            "`x_train` holds no images (shape [0, 28, 28])",
        ),
        (
            "count.npz",
            vec![("x_train", "|u1", &[1, 28, 28], &image), ("y_train", "|u1", &[2], &[1, 2])],
            "`x_train` holds 1 images but `y_train` is uint8 [2], not 1 labels",
        ),
        (
            "label_u8.npz",
            vec![("x_train", "|u1", &[1, 28, 28], &image), ("y_train", "|u1", &[1], &[12])],
            "`y_train` holds 12 at index 0, not a digit 0-9",
        ),
        (
            "label_i8.npz",
            vec![("x_train", "|u1", &[1, 28, 28], &image), ("y_train", "<i8", &[1], &minus_one)],
            "`y_train` holds -1 at index 0, not a digit 0-9",
        ),
    ];
    for (name, members, expect) in cases {
        let path = mnist_like(tmp.path(), name, &members);
        let err = mnist_load_data(&path, Split::Train).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
    let good = mnist_like(
        tmp.path(),
        "good.npz",
        &[("x_train", "|u1", &[1, 28, 28], &image), ("y_train", "<i8", &[1], &9i64.to_le_bytes())],
    );
    assert_eq!(mnist_load_data(&good, Split::Train).unwrap().labels, [9]);
}
