#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into fuzz/seeds/<target>/ from the bundled data and
the test fixtures (run from anywhere; stdlib only)."""
import glob, gzip, io, json, os, re, struct, tarfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
seeds = os.path.join(root, "fuzz", "seeds")


def put(target, name, data):
    os.makedirs(os.path.join(seeds, target), exist_ok=True)
    with open(os.path.join(seeds, target, name), "wb") as f:
        f.write(data)


# IDX: the first three digits and their labels, raw and gzipped.
images = gzip.open(os.path.join(root, "data/mnist-10k/train-images-idx3-ubyte.gz")).read()
labels = gzip.open(os.path.join(root, "data/mnist-10k/train-labels-idx1-ubyte.gz")).read()
small_images = struct.pack(">IIII", 0x803, 3, 28, 28) + images[16:16 + 3 * 784]
small_labels = struct.pack(">II", 0x801, 3) + labels[8:11]
put("idx", "images3", small_images)
put("idx", "images3.gz", gzip.compress(small_images))
put("idx", "labels3", small_labels)
put("idx", "labels3.gz", gzip.compress(small_labels))

# aclImdb: two reviews of each class from the bundled archive, as tar.gz and plain tar.
texts = {}
with tarfile.open(os.path.join(root, "data/imdb-5k/aclImdb-5k.tar.gz")) as tar:
    for m in tar:
        for key in ("train/pos", "train/neg", "test/pos", "test/neg"):
            if f"/{key}/" in m.name and m.isfile() and len([k for k in texts if key in k]) < 2:
                texts[m.name] = tar.extractfile(m).read()[:600]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out:
    for name, data in sorted(texts.items()):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
put("imdb_tar", "reviews8.tar", buf.getvalue())
put("imdb_tar", "reviews8.tar.gz", gzip.compress(buf.getvalue()))

# TextVectorization: the first byte is the knob (mode, max_tokens), then the documents.
docs = b"\n".join(t.replace(b"\n", b" ") for t in texts.values())
put("textvec", "multi_hot_20", bytes([40]) + docs)
put("textvec", "int_unlimited", bytes([1]) + docs)
put("textvec", "probes", bytes([200]) + "Don't STOP!\n<br /> naïve café ...\n\t tabs\nüber-cool 3.14".encode())

# Model configs: kiln's config.json (from the insta snapshot) and Keras' (from the traces).
snap = open(os.path.join(root, "crates/trainer/tests/snapshots/save_load__config_json_snapshot.snap")).read()
put("model_config", "kiln_config.json", re.split(r"^---$", snap, maxsplit=2, flags=re.M)[2].strip().encode())
for path in sorted(glob.glob(os.path.join(root, "tests/fixtures/keras/keras_trace_*.json")))[:3]:
    model = json.load(open(path))["model"]
    keras = {"class_name": "Sequential", "config": model["config"], "compile_config": model["compile"]}
    put("model_config", os.path.basename(path).replace("trace", "config"), json.dumps(keras).encode())


# Safetensors: weights of the entry point's 3-4-2 model, and a truncated copy.
def safetensors(tensors):
    header, data = {"__metadata__": {"format": "kiln"}}, b""
    for name, shape, values in tensors:
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


weights = safetensors([
    ("dense/kernel", [3, 4], [0.1 * i for i in range(12)]),
    ("dense/bias", [4], [0.0] * 4),
    ("dense_1/kernel", [4, 2], [-0.1 * i for i in range(8)]),
    ("dense_1/bias", [2], [0.5, -0.5]),
])
put("safetensors", "model.safetensors", weights)
put("safetensors", "truncated.safetensors", weights[:-7])
print("seeds written to", seeds)

# npz / pickle: Keras' dataset layouts, four pickle styles (fixtures of kiln-datasets).
fixtures = os.path.join(root, "crates/datasets/tests/fixtures/keras-datasets")
import zipfile  # noqa: E402
for path in sorted(glob.glob(os.path.join(fixtures, "*.npz"))):
    name = os.path.basename(path)
    put("npz", name, open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            data = z.read(member)
            if member.startswith("x_") and b"'|O'" in data[:200]:
                header_len = struct.unpack("<H", data[8:10])[0] if data[6] == 1 else struct.unpack("<I", data[8:12])[0]
                start = (10 if data[6] == 1 else 12) + header_len
                put("pickle", f"{name[:-4]}-{member[:-4]}", data[start:])

# pickle_repeat: count (3 bytes LE), prefix and unit lengths, prefix, unit, suffix; the
# stream is prefix + unit * count + suffix (tests/fuzz_entry.rs), so small inputs reach
# deep nestings. Real arrays as suffixes (accepted), the deep inputs of issue 23 (refused).
def repeat(count, prefix, unit, suffix):
    return count.to_bytes(3, "little") + bytes([len(prefix), len(unit)]) + prefix + unit + suffix


for name in sorted(os.listdir(os.path.join(seeds, "pickle"))):
    if "evil" not in name and name.endswith("x_train"):
        put("pickle_repeat", name, repeat(0, b"", b"", open(os.path.join(seeds, "pickle", name), "rb").read()))
head = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R(K\x01K\x02"
        b"\x85cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89]")
put("pickle_repeat", "wide_array_1000", repeat(1000, head, b"]K\x05aa", b"tb."))
put("pickle_repeat", "evil_tuple1_million", repeat(1_000_000, b"\x80\x02K\x01", b"\x85", b"0."))
put("pickle_repeat", "evil_memo_chain_million", repeat(1_000_000, b"\x80\x02]q\x00", b"]h\x00aq\x000", b"."))
