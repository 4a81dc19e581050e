"""Writes data/imdb-5k/imdb-5k.npz: the 5,000 bundled reviews in the form of Keras' imdb.npz.

Run from the repository root with the pinned stack (tensorflow-cpu==2.21.0, keras==3.15.1,
numpy==2.4.6):

    python data/generate/make_imdb_keras_form.py

Keras' imdb.npz stores each review as word ranks ("the integer 3 encodes the 3rd most
frequent word"), 1-based, ranked over the full corpus by a tokenizer that was never
published. This file ranks words over the 5,000 bundled reviews instead, tokenized by Keras'
own `TextVectorization` (standardize="lower_and_strip_punctuation", whitespace split), and
adapted on all of them: its vocabulary order (frequency, then Keras' tie-break) gives the
ranks, so rank r is `vocabulary[r + 1]` (index 0 is "", 1 is "[UNK]").

Reviews are in sorted member-path order (every neg/ before every pos/), as kiln's
`read_aclimdb` returns them; `imdb.load_data` then shuffles them with RandomState(seed).
`x_train` holds all 5,000 (they are training reviews); `x_test` is empty. Written by
`np.savez_compressed`, so the pickles are numpy's own (protocol 4).
"""

import os
import tarfile

import numpy as np

SRC = os.path.join("data", "imdb-5k", "aclImdb-5k.tar.gz")
OUT = os.path.join("data", "imdb-5k", "imdb-5k.npz")


def reviews():
    with tarfile.open(SRC) as t:
        members = sorted((m for m in t.getmembers() if m.isfile() and m.name.endswith(".txt")), key=lambda m: m.name)
        for m in members:
            label = 1 if "/pos/" in m.name else 0
            yield t.extractfile(m).read().decode("utf-8"), label


def main():
    import keras

    texts, labels = zip(*reviews())
    tv = keras.layers.TextVectorization(max_tokens=None, output_mode="int")
    tv.adapt(list(texts))
    ids = tv(list(texts)).numpy()  # padded with 0
    x = np.empty(len(texts), dtype=object)
    for i, row in enumerate(ids):
        ranks = [int(v) - 1 for v in row if v != 0]
        assert all(r >= 1 for r in ranks), "no [UNK]: the vocabulary was adapted on these texts"
        x[i] = ranks
    y = np.array(labels, dtype="int64")
    empty = np.empty(0, dtype=object)
    np.savez_compressed(OUT, x_train=x, y_train=y, x_test=empty, y_test=np.empty(0, dtype="int64"))
    print(OUT, len(x), "reviews;", len(tv.get_vocabulary()) - 2, "distinct words;", os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
