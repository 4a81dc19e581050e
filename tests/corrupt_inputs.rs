//! Every reader against bad files: each case must return an error that names the file
//! and says what is wrong — no panic, and no allocation anywhere near what a lying
//! header declares. `KILN_PRINT_ERRORS=1 cargo test --test corrupt_inputs -- --nocapture`
//! prints every message.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln::prelude::*;
use kiln_datasets::{OutputMode, Split, TextVectorization, read_aclimdb, read_idx, read_idx_pair};
use kiln_keras::model_from_keras_file;
use serde_json::json;

/// Records the largest single allocation, so a case that believes a header's size shows up.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator; only records sizes.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: LargestAllocation = LargestAllocation;

/// No case may allocate more than this at once (the real inputs here are kilobytes).
const ALLOCATION_LIMIT: usize = 64 << 20;

/// Reads the bad input at a path; the error as text.
type Reader = Box<dyn Fn(&Path) -> Result<(), String>>;

/// One bad input: a name, the file it lives in, and the words the error must contain.
struct Case {
    name: &'static str,
    file: PathBuf,
    expect: &'static [&'static str],
    run: Reader,
}

fn case(
    name: &'static str,
    file: PathBuf,
    expect: &'static [&'static str],
    run: impl Fn(&Path) -> Result<(), String> + 'static,
) -> Case {
    Case { name, file, expect, run: Box::new(run) }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// An IDX header: magic `0x0000 08 ndims`, then the dimensions.
fn idx_header(dims: &[u32]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
    b
}

fn idx(dims: &[u32], data_len: usize) -> Vec<u8> {
    let mut b = idx_header(dims);
    b.extend((0..data_len).map(|i| (i % 10) as u8));
    b
}

/// A tar(.gz) of `members` (path, content).
fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, path, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn good_reviews() -> Vec<u8> {
    tar(&[("aclImdb/train/pos/0_9.txt", b"great film"), ("aclImdb/train/neg/1_2.txt", b"dull film")])
}

/// A tiny trained model, saved into `dir`.
fn saved_model(dir: &Path) -> Sequential {
    let mut m = Sequential::new()
        .seed(1)
        .add(Dense::new(3).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    let x = Matrix::from_vec(4, 2, vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 1.0, 1.0]).unwrap();
    let y = Matrix::from_vec(4, 1, vec![0.0, 1.0, 0.0, 1.0]).unwrap();
    m.fit(&x, &y, FitOptions::default().epochs(1).verbose(Verbosity::Silent)).unwrap();
    m.save(dir).unwrap();
    m
}

/// A copy of the saved model in `base` with `edit` applied to the copy.
fn model_variant(base: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = base.parent().unwrap().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(base).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    edit(&dir);
    dir
}

/// A safetensors file holding `tensors` (name, dtype, shape, raw bytes).
fn safetensors_bytes(tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::tensor::serialize(views, None).unwrap()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The saved model's weights with `f` applied to each (name, shape, values).
fn weights_file(m: &Sequential, f: impl Fn(&str, &mut Vec<usize>, &mut Vec<f32>)) -> Vec<u8> {
    let tensors: Vec<_> = m
        .get_weights()
        .0
        .into_iter()
        .map(|mut t| {
            f(&t.name, &mut t.shape, &mut t.values);
            (t.name, t.shape, f32_bytes(&t.values))
        })
        .collect();
    let views: Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s, b)| (n.as_str(), safetensors::Dtype::F32, s.clone(), b.clone())).collect();
    safetensors_bytes(&views)
}

fn load_model(dir: &Path) -> Result<(), String> {
    Sequential::load(dir).map(|_| ()).map_err(|e| e.to_string())
}

fn idx_case(name: &'static str, file: PathBuf, expect: &'static [&'static str]) -> Case {
    case(name, file, expect, |p| read_idx(p).map(|_| ()).map_err(|e| e.to_string()))
}

fn imdb_case(name: &'static str, file: PathBuf, expect: &'static [&'static str]) -> Case {
    case(name, file, expect, |p| read_aclimdb(p, Split::Train).map(|_| ()).map_err(|e| e.to_string()))
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut v = Vec::new();
    // --- IDX (MNIST-family images and labels) ---
    let images = idx(&[3, 2, 2], 12);
    v.push(idx_case("idx: empty file", write(dir, "empty-idx3-ubyte", b""), &["empty"]));
    v.push(idx_case("idx: shorter than the magic", write(dir, "short-idx3-ubyte", &[0, 0, 8]), &["magic"]));
    v.push(idx_case("idx: text, not IDX", write(dir, "text-idx3-ubyte", b"hello world"), &["wrong magic"]));
    v.push(idx_case(
        "idx: float data type",
        write(dir, "float-idx3-ubyte", &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
        &["data type", "0x0d"],
    ));
    v.push(idx_case("idx: truncated header", write(dir, "hdr-idx3-ubyte", &images[..9]), &["header"]));
    v.push(idx_case("idx: truncated data", write(dir, "data-idx3-ubyte", &images[..20]), &["truncated"]));
    let mut trailing = images.clone();
    trailing.extend([1, 2, 3]);
    v.push(idx_case("idx: trailing bytes", write(dir, "trail-idx3-ubyte", &trailing), &["trailing bytes"]));
    v.push(idx_case(
        "idx: dimensions whose product overflows",
        write(dir, "overflow-idx3-ubyte", &idx(&[u32::MAX, u32::MAX, u32::MAX], 4)),
        &["overflow"],
    ));
    v.push(idx_case(
        "idx: 4 billion declared images, 16 bytes present",
        write(dir, "huge-idx3-ubyte", &idx(&[u32::MAX, 28, 28], 16)),
        &["4294967295", "truncated"],
    ));
    v.push(idx_case("idx: gzip cut in half", write(dir, "cut-idx3-ubyte.gz", &gzip(&images)[..15]), &["gzip"]));
    let mut flipped = gzip(&idx(&[50, 28, 28], 50 * 784));
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    v.push(idx_case("idx: gzip with a flipped byte", write(dir, "flip-idx3-ubyte.gz", &flipped), &["gzip"]));
    let labels = write(dir, "two-idx1-ubyte", &idx(&[2], 2));
    let imgs = write(dir, "three-idx3-ubyte", &images);
    v.push(case("idx: 3 images but 2 labels", imgs, &["3", "2"], move |p| {
        read_idx_pair(p, &labels).map(|_| ()).map_err(|e| e.to_string())
    }));
    let lab = write(dir, "labels-as-images-idx1-ubyte", &idx(&[3], 3));
    let lab2 = write(dir, "ok-idx1-ubyte", &idx(&[3], 3));
    v.push(case("idx: a label file where images belong", lab, &["labels-as-images"], move |p| {
        read_idx_pair(p, &lab2).map(|_| ()).map_err(|e| e.to_string())
    }));

    // --- aclImdb archives ---
    v.push(imdb_case("imdb: empty archive file", write(dir, "empty.tar.gz", b""), &["empty"]));
    v.push(imdb_case("imdb: random bytes", write(dir, "noise.tar", &[7u8; 3000]), &["not a tar archive"]));
    v.push(imdb_case("imdb: gzip of text, not tar", write(dir, "text.tar.gz", &gzip(&[b'x'; 2000])), &["archive"]));
    let gz = gzip(&good_reviews());
    v.push(imdb_case("imdb: tar.gz cut short", write(dir, "cut.tar.gz", &gz[..gz.len() / 2]), &["truncated"]));
    v.push(imdb_case(
        "imdb: no pos/neg reviews",
        write(dir, "other.tar", &tar(&[("aclImdb/README", b"hello")])),
        &["no aclImdb/train"],
    ));
    v.push(imdb_case(
        "imdb: only positive reviews",
        write(dir, "pos.tar", &tar(&[("aclImdb/train/pos/0_9.txt", b"good")])),
        &["neg"],
    ));
    // A member whose header claims 8 GiB, followed by 100 bytes.
    let mut lying = tar(&[("aclImdb/train/pos/0_9.txt", &[b'a'; 100])]);
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes().copy_from_slice(&lying[..512]);
    h.set_size(8 << 30);
    h.set_cksum();
    lying[..512].copy_from_slice(h.as_bytes());
    v.push(imdb_case("imdb: a member declaring 8 GiB", write(dir, "lying.tar", &lying[..1024]), &["8589934592"]));

    // --- TextVectorization ---
    v.push(case("textvec: max_tokens leaves no room", dir.join("(no file)"), &["max_tokens"], |_| {
        TextVectorization::new(OutputMode::MultiHot, Some(1)).map(|_| ()).map_err(|e| e.to_string())
    }));

    // --- saved models: config.json, model.safetensors, optimizer.safetensors ---
    let base = dir.join("model");
    let model = saved_model(&base);
    let json_of = |d: &Path| std::fs::read_to_string(d.join("config.json")).unwrap();
    let edit_config = |name: &'static str, f: fn(&mut serde_json::Value)| {
        model_variant(&base, name, |d| {
            let mut cfg: serde_json::Value = serde_json::from_str(&json_of(d)).unwrap();
            f(&mut cfg);
            std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
        })
    };
    let d = model_variant(&base, "no-config", |d| std::fs::remove_file(d.join("config.json")).unwrap());
    v.push(case("model: no config.json", d.join("config.json"), &["No such file"], move |_| load_model(&d)));
    let d = model_variant(&base, "cut-config", |d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        std::fs::write(d.join("config.json"), &text[..text.len() / 2]).unwrap();
    });
    v.push(case("model: config.json cut in half", d.join("config.json"), &["EOF"], move |_| load_model(&d)));
    let d = edit_config("unknown-layer", |c| c["layers"][0]["type"] = json!("SeparableConv2D"));
    v.push(case("model: unknown layer type", d.join("config.json"), &["SeparableConv2D"], move |_| load_model(&d)));
    let d = edit_config("future-format", |c| c["format_version"] = json!(99));
    v.push(case("model: format version from the future", d.join("config.json"), &["format_version 99"], move |_| {
        load_model(&d)
    }));
    let d = edit_config("zero-units", |c| c["layers"][0]["units"] = json!(0));
    v.push(case("model: a layer of zero units", d.join("config.json"), &["units (0)"], move |_| load_model(&d)));
    let d = edit_config("unknown-activation", |c| c["layers"][0]["activation"] = json!("hard_silu"));
    v.push(case("model: unknown activation", d.join("config.json"), &["hard_silu"], move |_| load_model(&d)));
    let d = edit_config("wider-config", |c| c["layers"][0]["units"] = json!(5));
    v.push(case(
        "model: config and weights disagree on a shape",
        d.join("model.safetensors"),
        &["dense/kernel", "[2, 5]", "[2, 3]"],
        move |_| load_model(&d),
    ));
    let d = model_variant(&base, "nan-weights", |d| {
        let bytes = weights_file(&model, |n, _, v| {
            if n == "dense_1/kernel" {
                v[1] = f32::NAN
            }
        });
        std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    });
    v.push(case(
        "model: NaN in a weight",
        d.join("model.safetensors"),
        &["dense_1/kernel", "NaN", "diverged"],
        move |_| load_model(&d),
    ));
    let d = model_variant(&base, "missing-tensor", |d| {
        let bytes = weights_file(&model, |_, _, _| {});
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let kept: Vec<_> = st
            .tensors()
            .into_iter()
            .filter(|(n, _)| n != "dense/bias")
            .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
            .collect();
        let kept: Vec<_> = kept.iter().map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone())).collect();
        std::fs::write(d.join("model.safetensors"), safetensors_bytes(&kept)).unwrap();
    });
    v.push(case("model: a tensor missing", d.join("model.safetensors"), &["missing tensor `dense/bias`"], move |_| {
        load_model(&d)
    }));
    let d = model_variant(&base, "f64-weights", |d| {
        let w = model.get_weights();
        let tensors: Vec<_> =
            w.0.iter()
                .map(|t| {
                    let b: Vec<u8> = t.values.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect();
                    (t.name.as_str(), safetensors::Dtype::F64, t.shape.clone(), b)
                })
                .collect();
        std::fs::write(d.join("model.safetensors"), safetensors_bytes(&tensors)).unwrap();
    });
    v.push(case("model: weights stored as F64", d.join("model.safetensors"), &["F64", "not F32"], move |_| {
        load_model(&d)
    }));
    let d = model_variant(&base, "cut-weights", |d| {
        let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    });
    v.push(case(
        "model: weights file cut short",
        d.join("model.safetensors"),
        &["not a valid safetensors"],
        move |_| load_model(&d),
    ));
    let d = model_variant(&base, "huge-header", |d| {
        let mut bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        bytes[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    });
    v.push(case(
        "model: weights header declaring 9 EB",
        d.join("model.safetensors"),
        &["not a valid safetensors"],
        move |_| load_model(&d),
    ));
    let d = model_variant(&base, "garbage-header", |d| {
        let mut bytes = 20u64.to_le_bytes().to_vec();
        bytes.extend(b"{not json at all!!!}");
        std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    });
    v.push(case(
        "model: weights header not JSON",
        d.join("model.safetensors"),
        &["not a valid safetensors"],
        move |_| load_model(&d),
    ));
    let d = model_variant(&base, "empty-weights", |d| std::fs::write(d.join("model.safetensors"), b"").unwrap());
    v.push(case("model: empty weights file", d.join("model.safetensors"), &["not a valid safetensors"], move |_| {
        load_model(&d)
    }));
    let d = model_variant(&base, "foreign-slot", |d| {
        let bytes =
            safetensors_bytes(&[("dense_9/kernel/velocity", safetensors::Dtype::F32, vec![1], f32_bytes(&[0.5]))]);
        std::fs::write(d.join("optimizer.safetensors"), bytes).unwrap();
    });
    v.push(case(
        "model: optimizer slot for another model",
        d.join("optimizer.safetensors"),
        &["dense_9/kernel/velocity"],
        move |_| load_model(&d),
    ));

    // --- plugin libraries (a model naming an unloaded plugin loads, and fails at first use
    // naming the plugin: tests/plugins.rs) ---
    let plugin_case = |name: &'static str, file: PathBuf, expect: &'static [&'static str]| {
        case(name, file, expect, |p| kiln_plugin::PluginRegistry::new().load(p).map(|_| ()).map_err(|e| e.to_string()))
    };
    v.push(plugin_case("plugin: a text file", write(dir, "libnotes.so", b"not a library"), &["cannot load"]));
    v.push(plugin_case("plugin: no such library", dir.join("libmissing.so"), &["cannot load"]));

    // --- Keras configuration files ---
    let keras = |name: &str, value: serde_json::Value| write(dir, name, value.to_string().as_bytes());
    let keras_case = |name: &'static str, file: PathBuf, expect: &'static [&'static str]| {
        case(name, file, expect, |p| model_from_keras_file(p).map(|_| ()).map_err(|e| e.to_string()))
    };
    v.push(keras_case(
        "keras: SeparableConv2D layer",
        keras(
            "conv.json",
            json!({"class_name": "Sequential", "config": {"layers": [{"class_name": "SeparableConv2D", "config": {}}]}}),
        ),
        &["SeparableConv2D"],
    ));
    v.push(keras_case(
        "keras: no layers",
        keras("nolayers.json", json!({"class_name": "Sequential", "config": {"name": "m"}})),
        &["layers"],
    ));
    v.push(keras_case("keras: not JSON", write(dir, "notjson.json", b"{\"class_name\": "), &["not valid JSON"]));
    v.push(keras_case(
        "keras: unsupported loss",
        keras(
            "loss.json",
            json!({"class_name": "Sequential", "config": {"layers": [
                       {"class_name": "Dense", "config": {"units": 1}}]},
                   "compile_config": {"optimizer": "rmsprop", "loss": "kl_divergence"}}),
        ),
        &["kl_divergence"],
    ));
    // --- .keras weights (model.weights.h5 through hdf5-reader) ---
    let weights_case = |name: &'static str, file: PathBuf, expect: &'static [&'static str]| {
        case(name, file, expect, |p| kiln_keras::import_keras_file(p).map(|_| ()).map_err(|e| e.to_string()))
    };
    let real_weights = keras_member("seq.keras", "model.weights.h5");
    v.push(weights_case(
        "keras weights: not HDF5",
        keras_archive(dir, "garbage-weights.keras", b"this is not an HDF5 file at all"),
        &["model.weights.h5", "not a readable HDF5 file"],
    ));
    v.push(weights_case(
        "keras weights: truncated HDF5",
        keras_archive(dir, "truncated-weights.keras", &real_weights[..real_weights.len() / 3]),
        &["model.weights.h5"],
    ));
    let mut flipped = real_weights.clone();
    for b in flipped.iter_mut().skip(64).step_by(97) {
        *b ^= 0x5a;
    }
    v.push(weights_case(
        "keras weights: bytes flipped all through",
        keras_archive(dir, "flipped-weights.keras", &flipped),
        &["model.weights.h5"],
    ));
    v.push(weights_case(
        "keras weights: another model's file",
        keras_archive(dir, "foreign-weights.keras", &keras_member("binary_head.keras", "model.weights.h5")),
        &["model.weights.h5", "layers/dense"],
    ));
    v
}

/// A member of one of the real Keras fixture archives.
fn keras_member(archive: &str, member: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/models").join(archive);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(member).unwrap(), &mut bytes).unwrap();
    bytes
}

/// seq.keras's config with `weights` as its model.weights.h5.
fn keras_archive(dir: &Path, name: &str, weights: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut out = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (member, bytes) in
        [("config.json", keras_member("seq.keras", "config.json")), ("model.weights.h5", weights.to_vec())]
    {
        out.start_file(member, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut out, &bytes).unwrap();
    }
    out.finish().unwrap();
    path
}

#[test]
fn every_bad_input_gets_an_error_naming_the_file_and_the_problem() {
    let dir = scratch();
    let cases = cases(&dir);
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        LARGEST.store(0, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (c.run)(&c.file)));
        let largest = LARGEST.load(Ordering::Relaxed);
        let problem = match outcome {
            Err(_) => Some("panicked".to_string()),
            Ok(Ok(())) => Some("was accepted".to_string()),
            Ok(Err(msg)) => {
                if std::env::var_os("KILN_PRINT_ERRORS").is_some() {
                    eprintln!("{:<45} {msg}", c.name);
                }
                let file_name = c.file.file_name().unwrap().to_string_lossy();
                let names_file = c.file.to_string_lossy().contains("(no file)") || msg.contains(&*file_name);
                let missing: Vec<_> = c.expect.iter().filter(|w| !msg.contains(*w)).collect();
                if !names_file {
                    Some(format!("error does not name {file_name}: {msg}"))
                } else if !missing.is_empty() {
                    Some(format!("error lacks {missing:?}: {msg}"))
                } else if largest > ALLOCATION_LIMIT {
                    Some(format!("allocated {largest} bytes at once"))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", c.name));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
