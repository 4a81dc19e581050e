//! TextVectorization against the Keras 3.15.1 fixtures (`tests/fixtures/`, produced by
//! `fixture_textvec.py`: `TextVectorization(max_tokens=10000, output_mode="multi_hot")` adapted
//! on the 5,000 bundled reviews in sorted-path order).

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::imdb_archive;
use kiln_datasets::{OutputMode, Reviews, Split, TextVectorization, read_aclimdb, standardize, tokenize};
use serde_json::Value;

fn reviews() -> &'static Reviews {
    static R: OnceLock<Reviews> = OnceLock::new();
    R.get_or_init(|| read_aclimdb(&imdb_archive(), Split::Train).unwrap())
}

fn adapted(mode: OutputMode, max_tokens: Option<usize>) -> TextVectorization {
    let mut tv = TextVectorization::new(mode, max_tokens).unwrap();
    let t = Instant::now();
    tv.adapt(&reviews().texts);
    eprintln!("adapt({mode:?}, {max_tokens:?}) on 5,000 reviews: {:?}", t.elapsed());
    tv
}

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn multi_hot() -> &'static TextVectorization {
    static TV: OnceLock<TextVectorization> = OnceLock::new();
    TV.get_or_init(|| adapted(OutputMode::MultiHot, Some(10_000)))
}

#[test]
fn vocabulary_equals_keras_line_for_line() {
    let text = fixture("imdb5k_vocab.txt");
    let want: Vec<&str> = text.lines().collect();
    let got = multi_hot().vocabulary();
    assert_eq!(got.len(), 10_000);
    assert_eq!(want.len(), 10_000);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "vocabulary index {i}");
    }
}

#[test]
fn first_20_multi_hot_rows_equal_keras() {
    let fx: Value = serde_json::from_str(&fixture("imdb5k_multihot_first20.json")).unwrap();
    let docs = fx["docs"].as_array().unwrap();
    assert_eq!(docs.len(), 20);
    let r = reviews();
    let x = multi_hot().multi_hot(&r.texts[..20]);
    assert_eq!((x.rows(), x.cols()), (20, 10_000));
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["doc"].as_u64(), Some(i as u64));
        assert_eq!(d["name"].as_str().unwrap(), r.paths[i]);
        assert_eq!(d["label"].as_u64().unwrap() as u8, r.labels[i]);
        let want: Vec<u32> =
            d["nonzero_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let (cols, vals) = x.row(i);
        assert_eq!(cols, want.as_slice(), "row {i}");
        assert!(vals.iter().all(|&v| v == 1.0));
    }
}

#[test]
fn whole_corpus_statistics_match_the_fixture_readme() {
    // fixtures README §1: mean nonzeros per document 129.259 (incl. [UNK]); 1,182,095 tokens,
    // 52,239 distinct.
    let r = reviews();
    let x = multi_hot().multi_hot(&r.texts);
    assert_eq!(x.rows(), 5000);
    assert_eq!(format!("{:.3}", x.nnz() as f64 / 5000.0), "129.259");
    let all = adapted(OutputMode::Count, None);
    assert_eq!(all.vocabulary_size(), 52_239 + 1);
    let counts = all.count(&r.texts);
    let total: f64 = (0..counts.rows()).map(|i| counts.row(i).1.iter().map(|&v| v as f64).sum::<f64>()).sum();
    assert_eq!(total, 1_182_095.0);
    // With an unlimited vocabulary nothing is out of vocabulary.
    assert!((0..counts.rows()).all(|i| counts.row(i).0.first() != Some(&0)));
}

#[test]
fn probes_match_keras() {
    let fx: Value = serde_json::from_str(&fixture("textvec_probes.json")).unwrap();
    let tv = multi_hot();
    let int = adapted(OutputMode::Int, Some(10_000));
    assert_eq!(&int.vocabulary()[..3], ["", "[UNK]", "the"]);
    let probes = fx["probes"].as_array().unwrap();
    assert!(probes.len() >= 8);
    for p in probes {
        let input = p["input"].as_str().unwrap();
        assert_eq!(standardize(input), p["keras_standardized"].as_str().unwrap(), "{input:?}");
        let tokens: Vec<String> =
            p["keras_tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
        assert_eq!(tokenize(input), tokens, "{input:?}");
        let want: Vec<u32> = p["keras_multihot_nonzero_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tv.multi_hot([input]).row(0).0, want.as_slice(), "{input:?}");
        let seq = &int.int_sequences([input])[0];
        assert_eq!(seq.len() as u64, p["textvectorization_int_len"].as_u64().unwrap(), "{input:?}");
        // Int indices are the multi-hot ones shifted by the padding slot.
        let mut shifted: Vec<u32> = seq.iter().map(|&j| j - 1).collect();
        shifted.sort();
        shifted.dedup();
        assert_eq!(shifted, want, "{input:?}");
    }
}

#[test]
fn tie_break_toys_match_keras() {
    let fx: Value = serde_json::from_str(&fixture("textvec_probes.json")).unwrap();
    let toys = fx["tie_break_toys"].as_object().unwrap();
    assert_eq!(toys.len(), 5);
    for (key, want) in toys {
        let want: Vec<&str> = want.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        // Keys look like "b a c a b c d", "TEXT (comment)" or "max_tokens=3[, output_mode=int] on 'TEXT'".
        let (text, max_tokens, mode) = match key.strip_prefix("max_tokens=") {
            Some(rest) => {
                let n: usize = rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()].parse().unwrap();
                let text = rest.split('\'').nth(1).unwrap();
                let mode = if rest.contains("output_mode=int") { OutputMode::Int } else { OutputMode::MultiHot };
                (text, Some(n), mode)
            }
            None => (key.split(" (").next().unwrap(), None, OutputMode::MultiHot),
        };
        let mut tv = TextVectorization::new(mode, max_tokens).unwrap();
        tv.adapt([text]);
        assert_eq!(tv.vocabulary(), want.as_slice(), "{key}");
    }
}

#[test]
fn adapt_replaces_the_previous_vocabulary() {
    let mut tv = TextVectorization::new(OutputMode::MultiHot, None).unwrap();
    tv.adapt(["x y y"]);
    tv.adapt(["b a c a b c d"]);
    assert_eq!(tv.vocabulary(), ["[UNK]", "c", "b", "a", "d"]);
}
